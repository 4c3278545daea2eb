"""Re-permission: write a "stay subscribed?" mail to readers who clicked nothing for a while."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion.alerts import campaigns
from clarion.audience import lists, repermission
from clarion.errors import ValidationError
from clarion.i18n import gettext
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip, int_list

DEFAULTS = {"inactive_days": "180", "stay_days": "14"}


def _whole(raw: str, field: str, errors: dict[str, str]) -> int | None:
    raw = raw.strip()
    if raw.isdigit():
        return int(raw)
    errors[field] = gettext("Give a whole number of days.")
    return None


def _form(typed: dict, chosen: list[int], errors: dict | None = None, status: int = 200):
    return (
        render_template(
            "admin/stay_form.html",
            typed=typed,
            chosen=chosen,
            errors=errors or {},
            all_lists=lists.all_lists(db()),
            max_days=repermission.MAX_DAYS,
        ),
        status,
    )


@bp.get("/alerts/new-stay")
@requires("compose")
def stay_new():
    """The form: which lists, inactive for how long, the deadline, the mail's words."""
    typed = {
        **DEFAULTS,
        "subject": gettext("Do you still want our mails?"),
        "body_md": gettext(
            "You have not opened a link in our mails for a while. If you still want them, "
            "press the button below. If you do not, we will stop writing to you: no need to "
            "do anything."
        ),
    }
    return _form(typed, [])


@bp.post("/alerts/new-stay")
@requires("compose")
def stay_create():
    """A newsletter draft to the inactive readers of the lists, with its deadline."""
    keys = ("subject", "body_md", "inactive_days", "stay_days")
    typed = {k: request.form.get(k, "") for k in keys}
    chosen = int_list(request.form.getlist("lists"))
    errors: dict[str, str] = {}
    inactive = _whole(typed["inactive_days"], "inactive_days", errors)
    stay_days = _whole(typed["stay_days"], "stay_days", errors)
    draft = campaigns.Draft(
        kind="newsletter",
        subject=typed["subject"],
        fields={"body_md": typed["body_md"]},
        lists=chosen,
        conditions={"type": "inactive", "days": inactive} if inactive else None,
    )
    try:
        if not chosen:
            errors["lists"] = gettext("Choose at least one list.")
        if errors:
            raise ValidationError(errors)
        alert = repermission.create(db(), current_editor(), draft, stay_days, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        shown = {**errors, **exc.errors}
        if "audience.conditions.days" in shown:
            shown["inactive_days"] = shown.pop("audience.conditions.days")
        return _form(typed, chosen, shown, 422)
    flash(gettext("Draft saved: check it, send a test, then send it."))
    return redirect(url_for("admin.alert", alert_id=alert.id))
