"""Bounces in the admin: the policy's numbers (owners), notices to dismiss, a bounce's evidence."""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, flash, redirect, render_template, request, url_for

from clarion.bounces import numbers
from clarion.bounces.policy import dismiss_notice
from clarion.errors import NotFound, ValidationError
from clarion.i18n import gettext
from clarion.models import Bounce
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


@bp.get("/settings/bounces")
@requires("manage_settings")
def bounce_settings():
    """The bounce policy's numbers, editable by owners."""
    policy = numbers.load_policy(db())
    return _form({k: str(v) for k, v in asdict(policy).items()}, {})


def _form(values: dict[str, str], errors: dict[str, str], status: int = 200):
    page = render_template(
        "admin/bounce_settings.html", values=values, errors=errors, limits=numbers.LIMITS
    )
    return page, status


@bp.post("/settings/bounces")
@requires("manage_settings")
def bounce_settings_save():
    """Save the policy; a refused form keeps what was typed."""
    try:
        numbers.save_policy(db(), current_editor(), request.form, client_ip())
    except ValidationError as exc:
        db().rollback()
        return _form(request.form.to_dict(), exc.errors, 422)
    db().commit()
    flash(gettext("The bounce policy is saved; it applies to every report from now on."))
    return redirect(url_for("admin.bounce_settings"))


@bp.post("/notices/<int:notice_id>/dismiss")
@requires("send")
def notice_dismiss(notice_id: int):
    """Mark a notice as dealt with."""
    dismiss_notice(db(), current_editor(), notice_id, client_ip())
    db().commit()
    flash(gettext("The notice is dismissed."))
    return redirect(url_for("admin.dashboard"))


@bp.get("/bounces/<int:bounce_id>/evidence")
@requires("manage_subscribers")
def bounce_evidence(bounce_id: int):
    """The report as it arrived (kept 30 days), as plain text: never rendered as HTML."""
    bounce = db().get(Bounce, bounce_id)
    if bounce is None or bounce.evidence is None:
        raise NotFound(
            gettext("No evidence is kept for this report (it is deleted after 30 days).")
        )
    text = bounce.evidence.decode("utf-8", "replace")
    response = Response(text, mimetype="text/plain")
    response.headers["Content-Disposition"] = f'inline; filename="bounce-{bounce.id}.txt"'
    response.headers["Cache-Control"] = "no-store"
    return response
