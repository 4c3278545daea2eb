"""Follow-ups: from a sent alert's page, a draft to its recipients who did not act."""

from __future__ import annotations

from flask import flash, redirect, request, url_for

from clarion.alerts import campaigns, followups
from clarion.errors import InvalidTransition, ValidationError
from clarion.i18n import gettext
from webapp.admin import bp, relations
from webapp.admin.access import current_editor, requires
from webapp.admin.alerts import alert_page
from webapp.extensions import db
from webapp.utils import client_ip


def _whole(raw: str, field: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationError({field: gettext("Give a whole number, or leave it empty.")})
    return int(raw)


@bp.post("/alerts/<int:alert_id>/follow-up")
@requires("compose")
def alert_follow_up(alert_id: int):
    """A draft to the alert's recipients who did not act; a refusal keeps what was typed."""
    found = campaigns.get_alert(db(), alert_id)
    typed = {k: request.form.get(k, "") for k in ("rule", "petition", "delay_hours")}
    try:
        follow_up = followups.create(
            db(),
            current_editor(),
            found,
            typed["rule"],
            petition_id=_whole(typed["petition"], "petition"),
            delay_hours=_whole(typed["delay_hours"], "delay_hours"),
            ip=client_ip(),
        )
        db().commit()
    except InvalidTransition as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.alert", alert_id=alert_id))
    except ValidationError as exc:
        db().rollback()
        shown = {**relations.follow_ups(db(), found, typed), "errors": exc.errors}
        return alert_page(found, follow_up=shown, status=422)
    if follow_up.scheduled_at is not None:
        flash(gettext("Follow-up written and scheduled; edit it before it starts if you wish."))
    else:
        flash(gettext("Follow-up written as a draft: edit it, then schedule or send it."))
    return redirect(url_for("admin.alert", alert_id=follow_up.id))
