"""Editor accounts resist the probe of issue 12: redirects, sessions, lockout, TOTP, guesses."""

from __future__ import annotations

import re

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text

from clarion import editors, throttle
from clarion.models import AuditEvent, Editor
from tests.helpers import csrf_from, refresh

PASSWORD = "correct horse battery staple"


def log_in(client, email, password=PASSWORD, path="/admin/login", **extra):
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token, **extra}
    return client.post(path, data=data)


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.com",
        "/%0a/evil.com",
        "/%0d/evil.com",
        "/%20/evil.com",
        "//evil.com",
        "/\\evil.com",
        "/%5cevil.com",
        "https://evil.com/",
        "javascript:alert(1)",
        "/%00/evil.com",
        "/%e2%80%8b/evil.com",
    ],
)
def test_login_never_redirects_off_site(client, make_editor, target):
    editor, _ = make_editor("editor")
    response = log_in(client, editor.email, path=f"/admin/login?next={target}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_login_keeps_a_local_next_path(client, make_editor):
    editor, _ = make_editor("editor")
    response = log_in(client, editor.email, path="/admin/login?next=/admin/alerts%3Fpage%3D2")
    assert response.headers["Location"] == "/admin/alerts?page=2"


def test_a_cookie_copied_before_logout_no_longer_works(app, client, login):
    login(client, "editor")
    assert client.get("/admin/alerts").status_code == 200
    stolen = client.get_cookie("clarion_session").value
    token = csrf_from(client.get("/admin/account").get_data(as_text=True))
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("clarion_session", stolen)
    response = replay.get("/admin/alerts")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


class CountingHasher(PasswordHasher):
    """The cheap test hasher, counting every verification."""

    calls = 0

    def verify(self, hash, password):
        CountingHasher.calls += 1
        return super().verify(hash, password)


@pytest.fixture
def counting(monkeypatch):
    hasher = CountingHasher(time_cost=1, memory_cost=64, parallelism=1)
    CountingHasher.calls = 0
    monkeypatch.setattr(editors, "_hasher", hasher)
    return CountingHasher


def client_from(app, ip: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def test_argon2_runs_on_every_login_path(app, session, make_editor, counting):
    """Unknown, switched off, blocked, wrong and right: one Argon2 verification each."""
    editor, _ = make_editor("editor")
    gone, _ = make_editor("viewer")
    gone.is_active = False
    session.commit()
    client = client_from(app, "10.0.0.1")
    attempts = [
        ("nobody@example.org", PASSWORD, 401),
        ("not an address", PASSWORD, 401),
        (gone.email, PASSWORD, 401),
        *[(editor.email, "wrong", 401)] * editors.MAX_FAILED_LOGINS,
        (editor.email, PASSWORD, 401),  # this address is now blocked for this account
    ]
    for email, password, status in attempts:
        before = counting.calls
        assert log_in(client, email, password).status_code == status, email
        assert counting.calls == before + 1, email
    before = counting.calls
    assert log_in(client_from(app, "10.0.0.9"), editor.email).status_code == 302
    assert counting.calls == before + 1


def test_a_stranger_cannot_lock_the_owner_out(app, session, make_editor):
    owner, _ = make_editor("owner")
    stranger = client_from(app, "203.0.113.7")
    for _ in range(editors.MAX_FAILED_LOGINS + 3):
        assert log_in(stranger, owner.email, "wrong").status_code == 401
    assert log_in(stranger, owner.email).status_code == 401  # the stranger's address is blocked
    assert log_in(client_from(app, "198.51.100.2"), owner.email).status_code == 302
    refresh(session)
    assert "editor.locked" in session.scalars(select(AuditEvent.action)).all()


def test_many_addresses_guessing_one_account_only_slow_it_down(settings):
    """Past the free guesses from everywhere, the account waits between attempts, boundedly."""
    now = 1_000_000.0
    for i in range(throttle.GUESSES_BEFORE_BACKOFF - 1):
        throttle.guess_failed("owner@example.org", f"10.1.0.{i}", now)
    assert not throttle.guessing_blocked("owner@example.org", "10.9.9.9", now)
    assert throttle.guess_failed("owner@example.org", "10.1.1.1", now)  # the backoff starts
    assert throttle.guessing_blocked("owner@example.org", "10.9.9.9", now + 0.5)
    assert not throttle.guessing_blocked("owner@example.org", "10.9.9.9", now + 1.5)
    for i in range(30):
        throttle.guess_failed("owner@example.org", f"10.2.0.{i}", now)
    wait = throttle.MAX_BACKOFF_SECONDS
    assert throttle.guessing_blocked("owner@example.org", "10.9.9.9", now + wait - 1)
    assert not throttle.guessing_blocked("owner@example.org", "10.9.9.9", now + wait + 1)
    throttle.forget_guesses("owner@example.org")
    assert not throttle.guessing_blocked("owner@example.org", "10.1.0.1", now)


def enable_totp(session, editor) -> str:
    secret = pyotp.random_base32()
    editor.totp_secret = editors.seal_secret(secret)
    session.commit()
    return secret


def test_a_totp_code_logs_in_only_once(app, session, make_editor):
    editor, _ = make_editor("editor")
    code = pyotp.TOTP(enable_totp(session, editor)).now()
    first, second = app.test_client(), app.test_client()
    assert log_in(first, editor.email, totp=code).status_code == 302
    assert log_in(second, editor.email, totp=code).status_code == 401
    refresh(session)
    assert session.get(Editor, editor.id).totp_last_step is not None


def test_totp_secret_is_not_stored_in_the_clear(client, session, login):
    me = login(client, "editor")
    page = client.get("/admin/account").get_data(as_text=True)
    token = csrf_from(page)
    client.post("/admin/account/2fa/start", data={"csrf_token": token})
    page = client.get("/admin/account").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)[1]
    refresh(session)
    with session.bind.connect() as conn:
        stored = conn.execute(
            text("SELECT totp_pending_secret FROM editors WHERE id = :id"), {"id": me.id}
        ).scalar()
    assert stored and secret not in stored and editors.open_secret(stored) == secret


@pytest.mark.parametrize(
    ("path", "field"),
    [("/admin/account/password", "current_password"), ("/admin/account/2fa/disable", "password")],
)
def test_current_password_guesses_are_counted_like_logins(client, session, login, path, field):
    me = login(client, "editor")
    enable_totp(session, me)
    token = csrf_from(client.get("/admin/account").get_data(as_text=True))
    data = {"csrf_token": token, "new_password": "a much longer password"}
    for _ in range(editors.MAX_FAILED_LOGINS):
        wrong = client.post(path, data={**data, field: "guess"})
        assert wrong.status_code == 422 and "not your current password" in wrong.text
    right = client.post(path, data={**data, field: PASSWORD})
    assert right.status_code == 422 and "Too many wrong passwords" in right.text
    refresh(session)
    stored = session.get(Editor, me.id)
    assert stored.totp_secret is not None
    assert editors._verify(stored.password_hash, PASSWORD)
