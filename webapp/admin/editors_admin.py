"""Owners manage editor accounts: create, change role, deactivate, unlock, reset."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for

from clarion import editors
from clarion.errors import ValidationError
from clarion.i18n import N_, gettext
from clarion.models import Role
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


def _page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    return (
        render_template(
            "admin/editors.html",
            accounts=editors.list_editors(db()),
            roles=list(Role),
            errors=errors or {},
            values=values or {"role": "editor"},
            locked=editors.is_locked,
            max_failed=editors.MAX_FAILED_LOGINS,
            lockout_minutes=int(editors.LOCKOUT.total_seconds() // 60),
        ),
        status,
    )


def _once(email: str, password: str, what: str):
    # The password appears in this one response and nowhere else: not cached, not logged.
    response = make_response(
        render_template("admin/editor_password.html", email=email, password=password, what=what)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/editors", endpoint="editors")
@requires("manage_editors")
def editors_page():
    """Every account with its role, two-factor state and lockout."""
    return _page()


@bp.post("/editors")
@requires("manage_editors")
def editor_create():
    """Create an account; its one-time password is shown once."""
    values = {"email": request.form.get("email", ""), "role": request.form.get("role", "")}
    try:
        editor, password = editors.create_editor(
            db(), values["email"], values["role"], actor=current_editor(), ip=client_ip()
        )
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(exc.errors, values, 422)
    return _once(editor.email, password, "created")


def _act(editor_id: int, action, done: str):
    editor = editors.get_editor(db(), editor_id)
    try:
        result = action(editor)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        flash(" ".join(exc.errors.values()), "error")
        return redirect(url_for("admin.editors")), editor, None
    flash(gettext(done, email=editor.email))
    return redirect(url_for("admin.editors")), editor, result


@bp.post("/editors/<int:editor_id>/role")
@requires("manage_editors")
def editor_role(editor_id: int):
    """Change a role; the last owner cannot be demoted."""
    try:
        role = Role(request.form.get("role", ""))
    except ValueError:
        flash(gettext("Choose owner, editor or viewer."), "error")
        return redirect(url_for("admin.editors"))
    response, _, _ = _act(
        editor_id,
        lambda e: editors.change_role(db(), current_editor(), e, role, client_ip()),
        {
            Role.OWNER: N_("%(email)s is now an owner."),
            Role.EDITOR: N_("%(email)s is now an editor."),
            Role.VIEWER: N_("%(email)s is now a viewer."),
        }[role],
    )
    return response


@bp.post("/editors/<int:editor_id>/deactivate")
@requires("manage_editors")
def editor_deactivate(editor_id: int):
    """Switch an account off; its sessions end."""
    return _act(
        editor_id,
        lambda e: editors.deactivate(db(), current_editor(), e, client_ip()),
        N_("%(email)s can no longer log in."),
    )[0]


@bp.post("/editors/<int:editor_id>/reactivate")
@requires("manage_editors")
def editor_reactivate(editor_id: int):
    """Switch an account back on."""
    return _act(
        editor_id,
        lambda e: editors.reactivate(db(), current_editor(), e, client_ip()),
        N_("%(email)s can log in again."),
    )[0]


@bp.post("/editors/<int:editor_id>/unlock")
@requires("manage_editors")
def editor_unlock(editor_id: int):
    """Lift a lockout after failed logins."""
    return _act(
        editor_id,
        lambda e: editors.unlock(db(), current_editor(), e, client_ip()),
        N_("%(email)s is unlocked."),
    )[0]


@bp.post("/editors/<int:editor_id>/reset-2fa")
@requires("manage_editors")
def editor_reset_totp(editor_id: int):
    """Turn off someone's two-factor (a lost phone); they enrol again after logging in."""
    return _act(
        editor_id,
        lambda e: editors.disable_totp(db(), current_editor(), e, client_ip()),
        N_("Two-factor is off for %(email)s."),
    )[0]


@bp.post("/editors/<int:editor_id>/reset-password")
@requires("manage_editors")
def editor_reset_password(editor_id: int):
    """A new one-time password, shown once."""
    response, editor, password = _act(
        editor_id,
        lambda e: editors.reset_password(db(), current_editor(), e, client_ip()),
        N_("New password for %(email)s."),
    )
    if password is None:
        return response
    return _once(editor.email, password, "given a new password")
