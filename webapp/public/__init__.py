"""Public pages: subscribe, confirm, unsubscribe, preferences, petitions, tracked links."""

from flask import Blueprint

bp = Blueprint("public", __name__)

# The public forms that take a POST without our CSRF token, on purpose; every other one needs
# it (tests/integration/test_roles_and_csrf.py checks both ways).
CSRF_EXEMPT = {
    "public.subscribe_submit": "blog sidebars post here from other sites; double opt-in protects",
    "public.unsubscribe_one_click": "RFC 8058: mailbox providers post with no cookie or token",
}

from webapp.public import (  # noqa: E402, F401
    archive,
    clicks,
    identity,
    landing,
    petitions,
    preferences,
    share,
    stay,
    subscribe,
    unsubscribe,
)
