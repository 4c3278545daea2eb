"""Owners manage accounts; two-factor enrolment; lockout shown and lifted; all audited."""

from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from clarion import editors
from clarion.models import AuditEvent, Editor, Role
from tests.helpers import csrf_from, refresh


def post(client, path, data=None, page="/admin/"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(path, data={**(data or {}), "csrf_token": token})


def actions(session) -> list[str]:
    refresh(session)
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_owner_creates_an_editor_and_sees_the_password_once(client, session, login):
    login(client, "owner")
    response = post(client, "/admin/editors", {"email": "New@Example.org", "role": "viewer"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="one-time-password">([^<]+)<', response.get_data(as_text=True))[1]
    refresh(session)
    made = session.scalar(select(Editor).where(Editor.email == "new@example.org"))
    assert made.role == Role.VIEWER
    assert editors.authenticate(session, "new@example.org", password) is not None
    listing = client.get("/admin/editors").get_data(as_text=True)
    assert "new@example.org" in listing and password not in listing
    assert "editor.create" in actions(session)


def test_creating_a_duplicate_keeps_the_form(client, session, login):
    login(client, "owner")
    response = post(client, "/admin/editors", {"email": "owner@example.org", "role": "editor"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "already exists" in html and 'value="owner@example.org"' in html


def test_role_change_and_last_owner_protection(client, session, login, make_editor):
    owner = login(client, "owner")
    other, _ = make_editor("editor")
    post(client, f"/admin/editors/{other.id}/role", {"role": "owner"})
    refresh(session)
    assert session.get(Editor, other.id).role == Role.OWNER
    post(client, f"/admin/editors/{other.id}/role", {"role": "viewer"})
    refresh(session)
    assert session.get(Editor, other.id).role == Role.VIEWER
    # Now the logged-in owner is the only one: demoting or deactivating them is refused.
    response = post(client, f"/admin/editors/{owner.id}/role", {"role": "editor"})
    assert response.status_code == 302
    page = client.get("/admin/editors").get_data(as_text=True)
    assert "at least one" in page
    post(client, f"/admin/editors/{owner.id}/deactivate")
    refresh(session)
    assert session.get(Editor, owner.id).role == Role.OWNER
    assert session.get(Editor, owner.id).is_active
    assert actions(session).count("editor.role") == 2


def test_deactivation_ends_sessions_at_once(app, client, session, login, make_editor):
    login(client, "owner")
    victim_client = app.test_client()
    victim = login(victim_client, "editor")
    assert victim_client.get("/admin/alerts").status_code == 200
    post(client, f"/admin/editors/{victim.id}/deactivate")
    assert victim_client.get("/admin/alerts").status_code == 302  # back to the login page
    post(client, f"/admin/editors/{victim.id}/reactivate")
    refresh(session)
    assert session.get(Editor, victim.id).is_active
    assert {"editor.deactivate", "editor.reactivate"} <= set(actions(session))


def test_lockout_is_shown_and_an_owner_can_lift_it(app, client, session, login, make_editor):
    login(client, "owner")
    victim, password = make_editor("editor")
    other = app.test_client()
    token = csrf_from(other.get("/admin/login").get_data(as_text=True))
    for _ in range(editors.MAX_FAILED_LOGINS):
        r = other.post(
            "/admin/login", data={"email": victim.email, "password": "wrong", "csrf_token": token}
        )
        assert r.status_code == 401
    # Locked: even the right password fails, with the same message.
    r = other.post(
        "/admin/login", data={"email": victim.email, "password": password, "csrf_token": token}
    )
    assert r.status_code == 401
    page = client.get("/admin/editors").get_data(as_text=True)
    assert "guessing blocked until" in page
    assert "editor.locked" in actions(session)
    post(client, f"/admin/editors/{victim.id}/unlock")
    r = other.post(
        "/admin/login", data={"email": victim.email, "password": password, "csrf_token": token}
    )
    assert r.status_code == 302
    assert "editor.unlock" in actions(session)


def test_totp_enrolment_with_our_own_qr_code_then_login_needs_a_code(app, client, session, login):
    me = login(client, "editor")
    page = client.get("/admin/account").get_data(as_text=True)
    assert "Set up two-factor" in page
    post(client, "/admin/account/2fa/start", page="/admin/account")
    page = client.get("/admin/account").get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in page  # drawn here, no remote QR service
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)[1]
    refresh(session)
    assert session.get(Editor, me.id).totp_secret is None  # not on before confirmation
    wrong = post(client, "/admin/account/2fa/confirm", {"code": "000000"}, page="/admin/account")
    assert wrong.status_code == 422 and "does not match" in wrong.get_data(as_text=True)
    code = pyotp.TOTP(secret).now()
    assert (
        post(client, "/admin/account/2fa/confirm", {"code": code}, "/admin/account").status_code
        == 302
    )
    refresh(session)
    stored = session.get(Editor, me.id)
    assert stored.totp_secret != secret and secret not in stored.totp_secret  # sealed at rest
    assert editors.open_secret(stored.totp_secret) == secret
    fresh = app.test_client()
    token = csrf_from(fresh.get("/admin/login").get_data(as_text=True))
    creds = {"email": me.email, "password": "correct horse battery staple", "csrf_token": token}
    assert fresh.post("/admin/login", data=creds).status_code == 401
    # The code that switched two-factor on is spent; the next time step's code logs in.
    assert fresh.post("/admin/login", data={**creds, "totp": code}).status_code == 401
    following = pyotp.TOTP(secret).at(time.time() + 30)
    assert fresh.post("/admin/login", data={**creds, "totp": following}).status_code == 302
    assert "editor.totp_on" in actions(session)


def test_owner_resets_a_lost_phone_and_password(client, session, login, make_editor):
    login(client, "owner")
    victim, _ = make_editor("editor")
    victim.totp_secret = pyotp.random_base32()
    session.commit()
    post(client, f"/admin/editors/{victim.id}/reset-2fa")
    response = post(client, f"/admin/editors/{victim.id}/reset-password")
    password = re.search(r'id="one-time-password">([^<]+)<', response.get_data(as_text=True))[1]
    refresh(session)
    assert session.get(Editor, victim.id).totp_secret is None
    assert editors.authenticate(session, victim.email, password) is not None
    assert {"editor.totp_off", "editor.password_reset"} <= set(actions(session))


def test_own_password_and_time_zone(client, session, login):
    me = login(client, "viewer")
    bad = post(client, "/admin/account", {"timezone": "Mars/Base"}, page="/admin/account")
    assert bad.status_code == 422
    post(client, "/admin/account", {"timezone": "Europe/Vilnius"}, page="/admin/account")
    refresh(session)
    assert session.get(Editor, me.id).timezone == "Europe/Vilnius"
    wrong = post(
        client,
        "/admin/account/password",
        {"current_password": "nope", "new_password": "a much longer password"},
        page="/admin/account",
    )
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    ok = post(
        client,
        "/admin/account/password",
        {
            "current_password": "correct horse battery staple",
            "new_password": "a much longer password",
        },
        page="/admin/account",
    )
    assert ok.status_code == 302
    refresh(session)
    assert editors.authenticate(session, me.email, "a much longer password") is not None


def test_audit_log_lists_events_for_owners_with_keyset_paging(client, session, login):
    owner = login(client, "owner")
    from clarion import audit

    for i in range(60):
        audit.record(session, owner, "subscribers.export", f"job:{i}")
    session.commit()
    first = client.get("/admin/audit?action=subscribers.export").get_data(as_text=True)
    assert first.count("<code>subscribers.export</code>") == 50
    assert "job:59" in first and "job:9<" not in first
    older = re.search(r'href="([^"]*after=\d+[^"]*)"', first)[1].replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert second.count("<code>subscribers.export</code>") == 10
    assert "job:0<" in second and "job:59" not in second


def test_session_cookie_is_secure_behind_https(settings, monkeypatch):
    from webapp import create_app

    app = create_app(settings.__class__(**{**settings.__dict__, "base_url": "https://a.example"}))
    client = app.test_client()
    response = client.get("/admin/login", base_url="https://a.example")
    cookie = response.headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
