"""The audit log, for owners: who did which sensitive thing, when, from where."""

from __future__ import annotations

from flask import render_template, request

from clarion import audit
from webapp.admin import bp
from webapp.admin.access import requires
from webapp.extensions import db
from webapp.utils import int_arg


@bp.get("/audit")
@requires("view_audit")
def audit_log():
    """Events newest first, filtered by kind, paged by id."""
    action = request.args.get("action") or None
    page = audit.page(db(), action, after=int_arg("after"), before=int_arg("before"))
    return render_template(
        "admin/audit.html",
        page=page,
        action=action,
        actions=audit.actions(db()),
        action_label=audit.action_label,
    )
