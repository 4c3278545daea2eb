"""An editor's own account: language, time zone, password, two-factor enrolment with a QR code."""

from __future__ import annotations

import base64
from collections.abc import Callable
from zoneinfo import available_timezones

import qrcode
import qrcode.image.svg
from flask import current_app, flash, redirect, render_template, request, url_for

from clarion import editors, i18n
from clarion.errors import ValidationError
from clarion.i18n import N_
from clarion.i18n import gettext as _
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.i18n import use_editor_language
from webapp.utils import client_ip

ZONES = sorted(available_timezones())


def qr_data_uri(text: str) -> str:
    """A QR code drawn here as SVG (no remote service ever sees the secret), as a data: URI."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=12)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def render(errors: dict | None = None, status: int = 200, **extra):
    """The Account page; `extra` reaches the sections included in it (API tokens)."""
    from webapp.admin import api_tokens

    return _page(errors, status, **api_tokens.context(), **extra)


def _page(errors: dict | None = None, status: int = 200, **extra):
    if "api_tokens" not in extra:
        return render(errors, status, **extra)
    me = current_editor()
    enrolment = None
    pending = editors.pending_secret(me)
    if pending and not me.totp_secret:
        uri = editors.totp_uri(me, pending, current_app.config["CLARION"].site_name)
        enrolment = {"secret": pending, "qr": qr_data_uri(uri)}
    return (
        render_template(
            "admin/account.html",
            me=me,
            zones=ZONES,
            errors=errors or {},
            enrolment=enrolment,
            languages=[(code, i18n.language_name(code)) for code in i18n.admin_languages()],
            my_language=i18n.admin_language(me.language),
            **extra,
        ),
        status,
    )


@bp.get("/account")
@requires("view")
def account():
    """The editor's own settings."""
    return _page()


def _save(action: Callable[[], object], message: str, then: str):
    """Run one change and commit, then say so (in the editor's language, which may have just
    changed); a refusal rolls back and shows what to fix."""
    try:
        action()
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(exc.errors, 422)
    use_editor_language()
    flash(_(message))
    return redirect(then)


@bp.post("/account")
@requires("view")
def account_save():
    """Save the time zone times are shown and entered in."""
    zone = request.form.get("timezone", "")
    return _save(
        lambda: editors.set_timezone(current_editor(), zone), N_("Saved."), url_for("admin.account")
    )


@bp.post("/account/language")
@requires("view")
def account_language():
    """Save the language the admin speaks to this editor (recorded in the audit log)."""
    code = request.form.get("language", "")
    return _save(
        lambda: editors.set_language(db(), current_editor(), code, client_ip()),
        N_("Saved. The admin now speaks your language."),
        url_for("admin.account"),
    )


@bp.post("/account/password")
@requires("view")
def account_password():
    """Change one's own password; other sessions end, so the editor logs in again."""
    current, new = request.form.get("current_password", ""), request.form.get("new_password", "")
    return _save(
        lambda: editors.change_own_password(db(), current_editor(), current, new, client_ip()),
        N_("Password changed. Please log in with the new one."),
        url_for("admin.login"),
    )


@bp.post("/account/2fa/start")
@requires("view")
def totp_start():
    """Make a new secret and show it as a QR code until a code confirms it."""
    editors.begin_totp(current_editor())
    db().commit()
    return redirect(url_for("admin.account") + "#two-factor")


@bp.post("/account/2fa/confirm")
@requires("view")
def totp_confirm():
    """Turn two-factor on after one correct code."""
    code = request.form.get("code", "")
    return _save(
        lambda: editors.confirm_totp(db(), current_editor(), code, client_ip()),
        N_("Two-factor is on: from now on, log in with a code from your app."),
        url_for("admin.account"),
    )


@bp.post("/account/2fa/disable")
@requires("view")
def totp_disable():
    """Turn two-factor off, with the password."""
    me, password = current_editor(), request.form.get("password", "")
    return _save(
        lambda: editors.disable_totp(db(), me, me, client_ip(), password=password),
        N_("Two-factor is off."),
        url_for("admin.account"),
    )
