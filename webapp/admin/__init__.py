"""The admin: editors log in to compose, send and watch."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from webapp.admin import auth, dashboard, outbox, petitions, stats  # noqa: E402, F401
