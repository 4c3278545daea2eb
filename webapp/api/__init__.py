"""Machine-facing endpoints: provider webhooks (no session, no CSRF; each proves itself)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

# What each machine-facing route takes as proof instead of a session and a CSRF token;
# tests/integration/test_roles_and_csrf.py walks the URL map and sends each without it.
ROUTE_PROOF = {
    "api.webhook": "the provider's signature, SNS certificate or Basic credentials",
}

from webapp.api import webhooks  # noqa: E402, F401
