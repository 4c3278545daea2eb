"""Editor accounts resist the probe of issue 12: redirects, sessions, lockout, TOTP, guesses."""

from __future__ import annotations

import pytest

from tests.helpers import csrf_from

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
