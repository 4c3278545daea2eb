"""Log in and out; wrong guesses are throttled per (account, address) and per address."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from clarion import audit, editors, throttle
from clarion.i18n import N_, gettext
from webapp.admin import bp
from webapp.extensions import EditorUser, db, login_manager
from webapp.utils import client_ip

LOGIN_LIMIT_PER_IP = "30/10minutes"
FAILED = N_("The address, password or code is wrong, or there were too many tries: wait a while.")
# Flask-Login flashes this on the login page, in the language the admin speaks there.
login_manager.login_message = N_("Please log in to continue.")
login_manager.localize_callback = gettext


@bp.get("/login")
def login():
    """The login form."""
    return render_template("admin/login.html", email="", error="")


@bp.post("/login")
def login_submit():
    """Check credentials; an address that keeps guessing wrong is blocked for that account."""
    email = request.form.get("email", "")
    ip = client_ip() or "unknown"
    if not throttle.hit(LOGIN_LIMIT_PER_IP, "login-ip", throttle.network_key(ip)):
        return render_template("admin/login.html", email=email, error=gettext(FAILED)), 429
    editor = editors.authenticate(
        db(), email, request.form.get("password", ""), request.form.get("totp", ""), ip
    )
    if editor is None:
        db().commit()  # keep the failure count
        return render_template("admin/login.html", email=email, error=gettext(FAILED)), 401
    audit.record(db(), editor, "editor.login", f"editor:{editor.id}", ip)
    db().commit()
    login_user(EditorUser(editor))
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    # Only local paths: never bounce a freshly logged-in editor to another site.
    return target if target and is_local_path(target) else url_for("admin.dashboard")


def is_local_path(target: str) -> bool:
    """True for a path on this site such as "/admin/alerts"; never "//host" or "https:…".

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so any control
    character, whitespace or backslash is refused outright rather than cleaned.
    """
    if not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@bp.post("/logout")
def logout():
    """End the session, and every copy of its cookie: the editor's session version moves on."""
    if current_user.is_authenticated:
        editors.end_sessions(current_user.editor)
        db().commit()
    logout_user()
    return redirect(url_for("admin.login"))
