"""Migration 0005 seals TOTP secrets stored in the clear, and opens them again on downgrade."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from clarion import editors, schema
from clarion.db import get_engine

PLAIN = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def fresh_url(backend, request, tmp_path):
    if backend.name == "postgresql":
        return request.getfixturevalue("pg_server").create_database("clarion_migration_5")
    return f"sqlite:///{tmp_path / 'migration.db'}"


def secrets_in(engine) -> tuple[str, str]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(text("SELECT totp_secret, totp_pending_secret FROM editors")).one()
        )


def test_plaintext_totp_secrets_are_sealed_and_unsealed(settings, fresh_url):
    schema.upgrade(fresh_url, "0003_bounces")
    engine = get_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO editors (email, name, password_hash, role, totp_secret, "
                "totp_pending_secret, timezone, is_active, failed_logins, session_version, "
                "created_at) VALUES ('o@example.org', '', 'x', 'owner', :s, :p, 'UTC', true, 0, "
                "1, CURRENT_TIMESTAMP)"
            ),
            {"s": PLAIN, "p": PLAIN[::-1]},
        )
    schema.upgrade(fresh_url)
    sealed, pending = secrets_in(engine)
    assert PLAIN not in sealed and PLAIN[::-1] not in pending
    assert editors.open_secret(sealed) == PLAIN and editors.open_secret(pending) == PLAIN[::-1]
    schema.downgrade(fresh_url, "0003_bounces")
    assert secrets_in(engine) == (PLAIN, PLAIN[::-1])
    engine.dispose()
