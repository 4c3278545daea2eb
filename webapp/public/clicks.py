"""Tracked links and the open pixel: answered from Redis, never waiting on the database."""

from __future__ import annotations

from flask import Response, abort, current_app, redirect

from clarion import clicks, tracking
from clarion.errors import NotFound
from webapp.public import bp


# No slash merging: "/r/t//host" must be a 404, not a redirect to a path built from the request.
@bp.get("/r/<token>/<n>", merge_slashes=False)
def follow_link(token: str, n: str) -> Response:
    """Send the reader to link n of the alert they got; 404 for anything else."""
    try:
        followed = clicks.follow(token, n, current_app.config["CLARION"].base_url)
    except NotFound:
        abort(404)
    response = redirect(followed.url, 302)
    # Every click must reach us to be counted, and a petition link carries a fresh reader token.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/o/<token>.gif", merge_slashes=False)
def open_pixel(token: str) -> Response:
    """A transparent pixel; an open is recorded only while an owner has tracking on."""
    tracking.record_open(token)
    response = Response(tracking.PIXEL_GIF, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store, private"
    return response
