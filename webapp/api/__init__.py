"""Machine-facing endpoints: provider webhooks (no session, no CSRF; each proves itself)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from webapp.api import webhooks  # noqa: E402, F401
