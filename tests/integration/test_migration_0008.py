"""Migration 0008 gives every existing alert the primary language it spoke before versions:
its audience's one language, else the instance default."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from clarion import schema
from clarion.db import get_engine


@pytest.fixture
def fresh_url(backend, request, tmp_path):
    if backend.name == "postgresql":
        return request.getfixturevalue("pg_server").create_database("clarion_migration_8")
    return f"sqlite:///{tmp_path / 'migration.db'}"


def add_alert(conn, uid: str, audience: dict) -> None:
    conn.execute(
        text(
            "INSERT INTO alerts (uid, kind, name, subject, preheader, fields, audience, status, "
            "status_reason, archive_public, role, created_at, updated_at, frozen_links, "
            "frozen_meta, recipients, possible_duplicates) VALUES (:uid, 'newsletter', '', 's', "
            "'', '{}', :audience, 'draft', '', false, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
            "'[]', '{}', 0, 0)"
        ),
        {"uid": uid, "audience": json.dumps(audience)},
    )


def test_existing_alerts_get_the_language_they_spoke(settings, fresh_url):
    schema.upgrade(fresh_url, "0007_languages")
    engine = get_engine(fresh_url)
    with engine.begin() as conn:
        add_alert(conn, "one", {"lists": [], "languages": ["be"]})
        add_alert(conn, "two", {"lists": [], "languages": ["be", "ru"]})
        add_alert(conn, "none", {})
    schema.upgrade(fresh_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT uid, language FROM alerts")).all())
        versions = conn.execute(text("SELECT translations, frozen_versions FROM alerts")).all()
    assert rows == {"one": "be", "two": "en", "none": "en"}
    assert {(str(t), str(f)) for t, f in versions} <= {("{}", "{}")}
    schema.downgrade(fresh_url, "0007_languages")
    engine.dispose()
