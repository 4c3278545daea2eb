"""Migration 0002 runs forwards and backwards on SQLite and PostgreSQL, keeping names searchable."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from clarion import schema
from clarion.db import get_engine


@pytest.fixture
def fresh_url(backend, request, tmp_path):
    if backend.name == "postgresql":
        return request.getfixturevalue("pg_server").create_database("clarion_migration")
    return f"sqlite:///{tmp_path / 'migration.db'}"


def test_upgrade_fills_name_search_and_downgrade_reverts(fresh_url):
    schema.upgrade(fresh_url, "0001")
    engine = get_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (uid, email, name, language, created_at, updated_at) "
                "VALUES ('u1', 'a@example.org', 'Алесь БЯЛЯЦКІ', 'be', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    schema.upgrade(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name_search FROM subscribers")).scalar() == (
            "алесь бяляцкі"
        )
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("subscriptions")}
    assert {"ix_subscriptions_list_subscriber", "ix_subscriptions_status_subscriber"} <= indexes
    if engine.dialect.name == "postgresql":
        names = {ix["name"] for ix in inspect(engine).get_indexes("subscribers")}
        assert "ix_subscribers_email_trgm" in names
    schema.downgrade(fresh_url, "0001")
    columns = {c["name"] for c in inspect(engine).get_columns("subscribers")}
    assert "name_search" not in columns
    schema.upgrade(fresh_url)
    engine.dispose()
