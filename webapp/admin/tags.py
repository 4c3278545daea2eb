"""Tags: create, count, delete; attaching happens in bulk from the subscriber filter."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion import audit
from clarion.audience import tags
from clarion.errors import ValidationError
from clarion.i18n import gettext
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


def _page(errors: dict | None = None, name: str = "", status: int = 200):
    return (
        render_template(
            "admin/tags.html",
            all_tags=tags.all_tags(db()),
            counts=tags.tag_counts(db()),
            errors=errors or {},
            name=name,
        ),
        status,
    )


@bp.get("/tags", endpoint="tags")
@requires("view")
def tags_page():
    """Every tag with how many subscribers carry it."""
    return _page()


@bp.post("/tags")
@requires("manage_subscribers")
def tag_create():
    """Create a tag."""
    name = request.form.get("name", "")
    try:
        tag = tags.create_tag(db(), name)
        audit.record(db(), current_editor(), "tag.create", f"tag:{tag.id}", client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(exc.errors, name, 422)
    flash(gettext("Tag %(name)s created.", name=tag.name))
    return redirect(url_for("admin.tags"))


@bp.post("/tags/<int:tag_id>/delete")
@requires("manage_subscribers")
def tag_delete(tag_id: int):
    """Delete a tag (subscribers keep everything else)."""
    tag = tags.get_tag(db(), tag_id)
    tags.delete_tag(db(), current_editor(), tag, client_ip())
    db().commit()
    flash(gettext("Tag deleted."))
    return redirect(url_for("admin.tags"))
