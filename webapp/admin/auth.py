"""Log in and out; failed logins are throttled per address and per network."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_login import login_user, logout_user

from clarion import audit, editors, throttle
from webapp.admin import bp
from webapp.extensions import EditorUser, db
from webapp.utils import client_ip

LOGIN_LIMIT_PER_IP = "30/10minutes"
FAILED = "The address, password or code is wrong, or the account is locked for a while."


@bp.get("/login")
def login():
    """The login form."""
    return render_template("admin/login.html", email="", error="")


@bp.post("/login")
def login_submit():
    """Check credentials; lock the account after repeated failures."""
    email = request.form.get("email", "")
    ip = client_ip() or "unknown"
    if not throttle.hit(LOGIN_LIMIT_PER_IP, "login-ip", ip):
        return render_template("admin/login.html", email=email, error=FAILED), 429
    editor = editors.authenticate(
        db(), email, request.form.get("password", ""), request.form.get("totp", "")
    )
    if editor is None:
        db().commit()  # keep the failure count
        return render_template("admin/login.html", email=email, error=FAILED), 401
    audit.record(db(), editor, "editor.login", f"editor:{editor.id}", ip)
    db().commit()
    login_user(EditorUser(editor))
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    # Only local paths: never bounce a freshly logged-in editor to another site.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin.dashboard")


@bp.post("/logout")
def logout():
    """End the session."""
    logout_user()
    return redirect(url_for("admin.login"))
