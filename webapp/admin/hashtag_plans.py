"""A hashtag day's plan in the admin: its announcement and reminder, at times in the editor's
zone."""

from __future__ import annotations

from flask import flash, redirect, request, url_for

from clarion.alerts import campaigns, hashtag_days
from clarion.errors import ValidationError
from clarion.i18n import gettext
from clarion.models import AlertRole
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.admin.alerts import alert_page
from webapp.extensions import db
from webapp.utils import client_ip


@bp.post("/alerts/<int:alert_id>/plan")
@requires("send")
def alert_plan(alert_id: int):
    """Schedule, move or drop the announcement and the reminder."""
    found = campaigns.get_alert(db(), alert_id)
    typed = {
        f"{role.value}_{part}": request.form.get(f"{role.value}_{part}", "")
        for role in hashtag_days.PLANNED
        for part in ("at", "subject")
    }
    items = {
        role: hashtag_days.PlanItem(typed[f"{role.value}_at"], typed[f"{role.value}_subject"])
        for role in hashtag_days.PLANNED
    }
    try:
        planned = hashtag_days.plan(db(), current_editor(), found, items, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return alert_page(campaigns.get_alert(db(), alert_id), exc.errors, typed, 422)
    shown = [
        label
        for role, label in (
            (AlertRole.ANNOUNCEMENT, gettext("announcement")),
            (AlertRole.REMINDER, gettext("reminder")),
        )
        if role in planned
    ]
    flash(gettext("Plan saved: %(what)s scheduled (%(zone)s).",
                  what=gettext(" and ").join(shown) or gettext("nothing"),
                  zone=current_editor().timezone))  # fmt: skip
    return redirect(url_for("admin.alert", alert_id=alert_id))
