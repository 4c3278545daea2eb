"""Public pages: subscribe, confirm, unsubscribe, preferences, petitions, tracked links."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from webapp.public import (  # noqa: E402, F401
    archive,
    clicks,
    petitions,
    preferences,
    share,
    subscribe,
    unsubscribe,
)
