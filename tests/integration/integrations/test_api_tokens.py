"""API tokens: kept hashed, scoped within the role, expiring, revocable, rate-limited, audited."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from clarion.config import reset_settings
from clarion.db import utcnow
from clarion.errors import ValidationError
from clarion.integrations import apitokens
from clarion.models import ApiToken, AuditEvent
from tests.helpers import csrf_from, refresh
from tests.integration.integrations.conftest import bearer

ROOT = Path(__file__).resolve().parents[3]


def test_the_token_is_stored_only_as_a_keyed_hash(session, make_token):
    secret = make_token("editor", ("read", "write"))
    row = session.scalar(select(ApiToken))
    assert secret.startswith("clarion_") and len(secret) > 40
    assert secret not in (row.token_hash, row.prefix) and row.prefix == secret[:14]
    assert row.token_hash == apitokens.token_hash(secret)
    use = apitokens.authenticate(session, secret, reading=True)
    assert use.editor.email == "editor@example.org"
    assert apitokens.authenticate(session, secret[:-1] + "x", reading=True) is None


@pytest.mark.parametrize(
    ("role", "scope"), [("viewer", "write"), ("viewer", "send"), ("editor", "nonsense")]
)
def test_a_scope_beyond_the_role_is_refused(session, make_editor, role, scope):
    editor, _ = make_editor(role)
    with pytest.raises(ValidationError) as caught:
        apitokens.create_token(session, editor, [scope])
    assert "scope" in caught.value.errors


def test_a_role_lowered_later_bounds_the_token_it_had(client, session, make_token):
    secret = make_token("editor", ("read", "write"))
    from clarion.models import Editor, Role

    editor = session.scalar(select(Editor))
    editor.role = Role.VIEWER
    session.commit()
    response = client.post("/api/v1/tags", json={"name": "later"}, headers=bearer(secret))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_expired_and_revoked_tokens_are_refused(client, session, make_token):
    old = make_token("owner", ("read",))
    revoked = make_token("owner", ("read",))
    rows = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    rows[0].expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert client.get("/api/v1/lists", headers=bearer(revoked)).status_code == 200
    owner = rows[1].editor_id
    from clarion.models import Editor

    apitokens.revoke(session, session.get(Editor, owner), rows[1].id)
    session.commit()
    for secret in (old, revoked, "", "clarion_nothing"):
        response = client.get("/api/v1/lists", headers=bearer(secret))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
        assert response.json["status"] == 401


def test_each_use_of_write_is_audited_with_its_token_and_last_use_noted(
    client, session, make_token
):
    secret = make_token("editor", ("read", "write"))
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 200
    assert (
        client.post("/api/v1/tags", json={"name": "kyiv"}, headers=bearer(secret)).status_code
        == 201
    )
    refresh(session)
    token = session.scalar(select(ApiToken))
    assert token.last_used_at is not None
    events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("api.%"))).all()
    assert [(e.action, e.detail["token"], e.editor_email) for e in events] == [
        ("api.tag_create", token.id, "editor@example.org")
    ]


def test_a_token_over_its_rate_limit_gets_429_with_retry_after(client, make_token, monkeypatch):
    monkeypatch.setenv("CLARION_API_RATE_LIMIT", "3/minute")
    reset_settings()
    secret = make_token("viewer", ("read",))
    other = make_token("owner", ("read",))
    codes = [client.get("/api/v1/lists", headers=bearer(secret)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/lists", headers=bearer(secret))
    # Until the first of the three leaves the minute's window: most of a minute.
    assert response.status_code == 429 and 50 <= int(response.headers["Retry-After"]) <= 60
    assert client.get("/api/v1/lists", headers=bearer(other)).status_code == 200


def test_an_editor_makes_sees_and_revokes_a_token_on_the_account_page(client, session, login):
    login(client, "editor")
    page = client.get("/admin/account")
    assert "API tokens" in page.text and 'value="send"' in page.text
    made = client.post(
        "/admin/account/api-tokens",
        data={"csrf_token": csrf_from(page.text), "name": "CRM", "scope": ["read", "write"]},
    )
    assert made.status_code == 201
    secret = made.text.split('id="new-api-token">')[1].split("<")[0]
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 200
    assert secret not in client.get("/admin/account").text  # shown once
    token = session.scalar(select(ApiToken))
    assert token.name == "CRM" and token.scopes == ["read", "write"]
    client.post(
        f"/admin/account/api-tokens/{token.id}/revoke",
        data={"csrf_token": csrf_from(page.text)},
    )
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 401


def test_a_viewer_cannot_make_a_write_token_on_the_account_page(client, login):
    login(client, "viewer")
    page = client.get("/admin/account")
    assert 'value="write"' not in page.text
    refused = client.post(
        "/admin/account/api-tokens",
        data={"csrf_token": csrf_from(page.text), "scope": "write"},
    )
    assert refused.status_code == 422 and "does not allow the scope write" in refused.text


def test_the_cli_creates_lists_and_revokes_tokens(settings, session, make_editor):
    from click.testing import CliRunner

    from clarion.cli import main

    make_editor("editor")
    runner = CliRunner()
    made = runner.invoke(
        main, ["api-tokens", "create", "editor@example.org", "--scope", "read", "--expires", "30"]
    )
    assert made.exit_code == 0, made.output
    secret = made.output.split("Token (shown once): ")[1].strip()
    assert apitokens.authenticate(session, secret, reading=True) is not None
    listed = runner.invoke(main, ["api-tokens", "list"])
    assert "editor@example.org" in listed.output and "active" in listed.output
    assert secret not in listed.output
    token_id = session.scalar(select(ApiToken.id))
    assert runner.invoke(main, ["api-tokens", "revoke", str(token_id)]).exit_code == 0
    refresh(session)
    assert apitokens.authenticate(session, secret, reading=True) is None
    refused = runner.invoke(
        main, ["api-tokens", "create", "editor@example.org", "--scope", "send", "--expires", "0"]
    )
    assert refused.exit_code == 1 and "expires" in refused.output


def _token_reads():
    """Count the statements (of any engine: reads have their own) that find a token by hash."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        if "FROM api_tokens" in statement and "token_hash" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    return seen, lambda: event.remove(Engine, "before_cursor_execute", note)


def test_a_token_known_to_the_process_is_not_read_again_until_it_is_old(
    client, session, make_token, monkeypatch
):
    secret = make_token("editor", ("read",))
    seen, stop = _token_reads()
    try:
        for _ in range(3):
            assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 200
        assert len(seen) == 1
        # Changed behind Clarion's back (SQL by hand): counts once the kept copy is old.
        session.execute(ApiToken.__table__.update().values(revoked_at=utcnow()))
        session.commit()
        monkeypatch.setattr(apitokens, "KNOWN_SECONDS", 0.0)
        assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 401
        assert len(seen) == 2
    finally:
        stop()


def test_a_token_revoked_by_another_process_is_refused_at_once(client, session, make_token):
    secret = make_token("owner", ("read",))
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 200  # now kept
    token_id = session.scalar(select(ApiToken.id))
    result = subprocess.run(
        [sys.executable, "-m", "clarion.cli", "api-tokens", "revoke", str(token_id)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 401


def test_a_role_lowered_or_an_account_switched_off_counts_at_once_after_use(
    client, session, make_token, make_editor
):
    from clarion import editors
    from clarion.models import Editor, Role

    secret = make_token("editor", ("read", "write"))
    owner, _ = make_editor("owner", "boss@example.org")
    tag = {"name": "first"}
    assert client.post("/api/v1/tags", json=tag, headers=bearer(secret)).status_code == 201
    editor = session.scalar(select(Editor).where(Editor.email == "editor@example.org"))
    editors.change_role(session, owner, editor, Role.VIEWER, None)
    session.commit()
    tag = {"name": "second"}
    assert client.post("/api/v1/tags", json=tag, headers=bearer(secret)).status_code == 403
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 200
    editors.deactivate(session, owner, editor, None)
    session.commit()
    assert client.get("/api/v1/tags", headers=bearer(secret)).status_code == 401


def test_the_limit_and_the_stamp_read_together_count_in_the_same_window(settings):
    from clarion import editors, throttle
    from clarion.redisconn import get_redis

    stamp = editors.standing()
    asked = [throttle.hit_reading("3/minute", ("api-token", "7"), editors.STANDING_KEY)]
    get_redis().script_flush()  # Redis restarted, say: the script is loaded again
    asked.append(throttle.hit_reading("3/minute", ("api-token", "7"), editors.STANDING_KEY))
    assert asked == [(True, stamp.encode()), (True, stamp.encode())]
    assert throttle.hit("3/minute", "api-token", "7")  # the third in the same window
    assert throttle.hit_reading("3/minute", ("api-token", "7"), "nothing-here") == (False, None)
    assert throttle.hit("3/minute", "api-token", "8")  # other tokens keep their budget


def test_only_a_tokens_editor_or_an_owner_may_revoke_it_and_each_sees_their_own(
    session, make_editor
):
    from clarion.errors import NotFound

    alice, _ = make_editor("editor", "alice@example.org")
    bob, _ = make_editor("editor", "bob@example.org")
    owner, _ = make_editor("owner", "boss@example.org")
    hers, _ = apitokens.create_token(session, alice, ["read"])
    his, _ = apitokens.create_token(session, bob, ["read"])
    session.commit()
    assert [t.id for t in apitokens.tokens_of(session, alice)] == [hers.id]
    assert [t.id for t in apitokens.tokens_of(session, None)] == [his.id, hers.id]
    with pytest.raises(NotFound):
        apitokens.revoke(session, bob, hers.id)
    with pytest.raises(NotFound):
        apitokens.revoke(session, alice, 999_999)
    assert hers.revoked_at is None
    apitokens.revoke(session, alice, hers.id)
    apitokens.revoke(session, owner, his.id)
    session.commit()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.target, e.editor_email) for e in events[-4:]] == [
        ("api_token.create", f"api_token:{hers.id}", "alice@example.org"),
        ("api_token.create", f"api_token:{his.id}", "bob@example.org"),
        ("api_token.revoke", f"api_token:{hers.id}", "alice@example.org"),
        ("api_token.revoke", f"api_token:{his.id}", "boss@example.org"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scopes": []}, "scope"),
        ({"name": "n" * 101}, "name"),
        ({"expires_days": 0}, "expires"),
        ({"expires_days": apitokens.MAX_DAYS + 1}, "expires"),
    ],
)
def test_a_token_asked_for_badly_is_refused_naming_the_field(session, make_editor, kwargs, field):
    editor, _ = make_editor("editor")
    asked = {"scopes": ["read"], **kwargs}
    with pytest.raises(ValidationError) as caught:
        apitokens.create_token(session, editor, asked.pop("scopes"), **asked)
    assert list(caught.value.errors) == [field] and caught.value.errors[field]


def test_the_limits_of_name_and_expiry_are_allowed(session, make_editor):
    editor, _ = make_editor("editor")
    longest, _ = apitokens.create_token(session, editor, ["read"], name="n" * 100, expires_days=1)
    furthest, _ = apitokens.create_token(
        session, editor, ["read"], expires_days=apitokens.MAX_DAYS
    )
    assert len(longest.name) == 100
    assert timedelta(days=apitokens.MAX_DAYS - 1) < furthest.expires_at - utcnow()


def test_a_token_expires_at_its_moment_and_its_last_use_is_written_once_a_minute(
    session, make_token
):
    secret = make_token("editor", ("read",), expires_days=1)
    token = session.scalar(select(ApiToken))
    start = utcnow()
    assert apitokens.authenticate(session, secret, start) is not None
    session.commit()
    for later in (timedelta(seconds=59), timedelta(seconds=60)):
        assert apitokens.authenticate(session, secret, start + later) is not None
        session.commit()
        refresh(session)
        written = start if later < apitokens.LAST_USE_GRANULARITY else start + later
        assert session.get(ApiToken, token.id).last_used_at == written
    assert apitokens.authenticate(session, secret, token.expires_at) is None
