"""The accent colour as a stylesheet (the pages' CSP allows no inline style)."""

from __future__ import annotations

from flask import Response

from webapp.identity import accent_css, current
from webapp.public import bp


@bp.get("/identity.css")
def identity_css():
    """Pico's primary colour in the campaign's accent; the URL carries the colour, so it may be
    cached."""
    response = Response(accent_css(current().accent), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
