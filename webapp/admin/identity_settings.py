"""The campaign's identity (owners): name, logo, accent, addresses, default sender."""

from __future__ import annotations

from dataclasses import asdict

from flask import current_app, flash, redirect, render_template, request, url_for

from clarion.alerts import identity
from clarion.errors import ValidationError
from clarion.i18n import gettext
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


@bp.get("/settings/identity")
@requires("manage_settings")
def identity_settings():
    """The identity as it is, editable by owners."""
    current = identity.load(db())
    return _form(current, {k: str(v) for k, v in asdict(current).items()}, {})


def _form(current: identity.Identity, values: dict[str, str], errors: dict[str, str], status=200):
    page = render_template(
        "admin/identity.html",
        current=current,
        values=values,
        errors=errors,
        min_contrast=identity.MIN_CONTRAST,
    )
    return page, status


@bp.post("/settings/identity")
@requires("manage_settings")
def identity_settings_save():
    """Save the identity; a refused form keeps what was typed (a chosen logo is chosen again)."""
    upload = request.files.get("logo")
    logo = upload.stream if upload is not None and upload.filename else None
    try:
        identity.save(
            db(),
            current_editor(),
            request.form,
            logo,
            current_app.config["CLARION"].instance_dir,
            client_ip(),
        )
    except ValidationError as exc:
        db().rollback()
        return _form(identity.load(db()), request.form.to_dict(), exc.errors, 422)
    db().commit()
    flash(gettext("The campaign's identity is saved: pages show it now, mails from now on."))
    return redirect(url_for("admin.identity_settings"))
