"""The Outbox: what the local mail catcher received, as subscribers would see it."""

from __future__ import annotations

from flask import abort, current_app, make_response, render_template

from clarion.delivery import mailcatcher
from webapp.admin import bp
from webapp.admin.access import requires
from webapp.security import OUTBOX_FRAME_CSP


def _outbox_dir():
    return current_app.config["CLARION"].outbox_dir


@bp.get("/outbox")
@requires("view")
def outbox():
    """The newest caught messages."""
    return render_template("admin/outbox.html", messages=mailcatcher.list_messages(_outbox_dir()))


@bp.get("/outbox/<key>")
@requires("view")
def outbox_message(key: str):
    """One message: rendered, as text, and with its headers."""
    message = mailcatcher.get_message(_outbox_dir(), key)
    if message is None:
        abort(404)
    return render_template("admin/outbox_message.html", m=message)


@bp.get("/outbox/<key>/html")
@requires("view")
def outbox_html(key: str):
    """The HTML part alone, for the sandboxed frame; no script can run in it."""
    message = mailcatcher.get_message(_outbox_dir(), key)
    if message is None or message.html is None:
        abort(404)
    response = make_response(message.html)
    response.headers["Content-Security-Policy"] = OUTBOX_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
