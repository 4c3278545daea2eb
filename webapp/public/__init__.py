"""Public pages: subscribe, confirm, unsubscribe, preferences."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from webapp.public import archive, preferences, subscribe, unsubscribe  # noqa: E402, F401
