"""Lists: create and edit, with each list's sender name, address and reply-to."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion import audit, lists
from clarion.errors import ValidationError
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip

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
    flash(f"List {made.name} created.")
    return redirect(url_for("admin.lists"))


@bp.get("/lists/<int:list_id>")
@requires("view")
def list_edit(list_id: int):
    """A list's settings."""
    ml = lists.get_list(db(), list_id)
    values = {k: getattr(ml, k) or "" for k in FIELDS} | {"is_public": ml.is_public}
    return render_template("admin/list_form.html", ml=ml, values=values, errors={})


@bp.post("/lists/<int:list_id>")
@requires("manage_subscribers")
def list_update(list_id: int):
    """Save a list's settings."""
    ml = lists.get_list(db(), list_id)
    values = _form_values()
    try:
        lists.update_list(db(), ml, values)
        audit.record(db(), current_editor(), "list.update", f"list:{ml.id}", client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return render_template("admin/list_form.html", ml=ml, values=values, errors=exc.errors), 422
    flash("Saved.")
    return redirect(url_for("admin.lists"))
