"""The open pixel (the click path itself is webapp.tracked_links, below Flask)."""

from __future__ import annotations

from flask import Response

from clarion.tracking import opens
from webapp.public import bp


@bp.get("/o/<token>.gif", merge_slashes=False)
def open_pixel(token: str) -> Response:
    """A transparent pixel; an open is recorded only while an owner has tracking on."""
    opens.record_open(token)
    response = Response(opens.PIXEL_GIF, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store, private"
    return response
