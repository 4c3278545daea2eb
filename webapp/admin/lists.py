"""Lists: create and edit, with each list's sender name, address and reply-to."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion import audit
from clarion.audience import lists
from clarion.errors import ValidationError
from clarion.i18n import gettext
from clarion.models import MailingList
from clarion.series import welcome as series_welcome
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip, optional_int

FIELDS = ("name", "slug", "description", "from_name", "from_email", "reply_to")


def _form_values() -> dict:
    values = {k: request.form.get(k, "") for k in FIELDS}
    values["is_public"] = request.form.get("is_public") == "on"
    return values


@bp.get("/lists", endpoint="lists")
@requires("view")
def lists_page():
    """Every list with its counts."""
    return render_template(
        "admin/lists.html", all_lists=lists.all_lists(db()), counts=lists.counts(db())
    )


@bp.get("/lists/new")
@requires("manage_subscribers")
def list_new():
    """An empty list form."""
    return render_template("admin/list_form.html", ml=None, values={"is_public": True}, errors={})


@bp.post("/lists/new")
@requires("manage_subscribers")
def list_create():
    """Create a list."""
    values = _form_values()
    try:
        made = lists.create_list(db(), values)
        audit.record(db(), current_editor(), "list.create", f"list:{made.id}", client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return render_template(
            "admin/list_form.html", ml=None, values=values, errors=exc.errors
        ), 422
    flash(gettext("List %(name)s created.", name=made.name))
    return redirect(url_for("admin.lists"))


def _edit_page(ml: MailingList, values: dict, errors: dict, status: int = 200):
    return (
        render_template(
            "admin/list_form.html",
            ml=ml,
            values=values,
            errors=errors,
            welcome_choices=lists.welcome_choices(db(), ml),
            current_welcome=lists.welcome_alert_id(db(), ml),
            welcome_series=series_welcome.series_of(db(), ml.id),
        ),
        status,
    )


@bp.get("/lists/<int:list_id>")
@requires("view")
def list_edit(list_id: int):
    """A list's settings."""
    ml = lists.get_list(db(), list_id)
    values = {k: getattr(ml, k) or "" for k in FIELDS} | {"is_public": ml.is_public}
    values["welcome_alert_id"] = lists.welcome_alert_id(db(), ml)
    return _edit_page(ml, values, {})


@bp.post("/lists/<int:list_id>")
@requires("manage_subscribers")
def list_update(list_id: int):
    """Save a list's settings, and its welcome mail (which needs the right to send)."""
    ml = lists.get_list(db(), list_id)
    values = _form_values()
    raw_welcome = request.form.get("welcome_alert_id", "")
    values["welcome_alert_id"] = optional_int(raw_welcome, "welcome_alert_id")
    try:
        lists.update_list(db(), ml, values)
        lists.set_welcome(db(), current_editor(), ml, values["welcome_alert_id"], client_ip())
        audit.record(db(), current_editor(), "list.update", f"list:{ml.id}", client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _edit_page(lists.get_list(db(), list_id), values, exc.errors, 422)
    flash(gettext("Saved."))
    return redirect(url_for("admin.lists"))
