"""Send control in the admin: send, pause, resume, cancel, send to the unreached, live progress."""

from __future__ import annotations

from collections.abc import Callable

from flask import jsonify, redirect, render_template, url_for

from clarion.alerts import reasons
from clarion.delivery import dispatch as engine
from clarion.delivery import sending
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


def _act(alert_id: int, action: Callable, dispatch: bool) -> int:
    """Apply one state change for the logged-in editor; commit; enqueue work after commit."""
    session = db()
    # A refused change raises before the commit: the request's session is discarded unsaved.
    alert = action(session, sending.get_alert(session, alert_id), current_editor(), client_ip())
    session.commit()
    if dispatch:
        engine.enqueue_dispatch(alert.id)
    return alert.id


def _to_progress(alert_id: int):
    return redirect(url_for("admin.alert_progress", alert_id=alert_id), code=303)


@bp.post("/alerts/<int:alert_id>/send")
@requires("send")
def alert_send(alert_id: int):
    """Freeze and start sending."""
    return _to_progress(_act(alert_id, sending.start, dispatch=True))


@bp.post("/alerts/<int:alert_id>/pause")
@requires("send")
def alert_pause(alert_id: int):
    """Stop handing out work."""
    return _to_progress(_act(alert_id, sending.pause, dispatch=False))


@bp.post("/alerts/<int:alert_id>/resume")
@requires("send")
def alert_resume(alert_id: int):
    """Carry on; deferred readers are tried again at once."""
    return _to_progress(_act(alert_id, sending.resume, dispatch=True))


@bp.post("/alerts/<int:alert_id>/cancel")
@requires("send")
def alert_cancel(alert_id: int):
    """Stop for good."""
    return _to_progress(_act(alert_id, sending.cancel, dispatch=False))


@bp.post("/alerts/<int:alert_id>/send-unreached")
@requires("send")
def alert_send_unreached(alert_id: int):
    """Send the same frozen alert to audience members it has not reached."""
    return _to_progress(_act(alert_id, sending.send_to_unreached, dispatch=True))


@bp.get("/alerts/<int:alert_id>/progress")
@requires("view")
def alert_progress(alert_id: int):
    """The live progress page (our own script polls progress.json)."""
    alert = sending.get_alert(db(), alert_id)
    return render_template(
        "admin/sending/progress.html", alert=alert, progress=sending.progress(db(), alert_id)
    )


@bp.get("/alerts/<int:alert_id>/progress.json")
@requires("view")
def alert_progress_json(alert_id: int):
    """Counts per status, rate and ETA, for the progress page and scripts."""
    found = sending.progress(db(), alert_id).as_dict()
    found["status_reason"] = reasons.shown(found["status_reason"])
    return jsonify(found)
