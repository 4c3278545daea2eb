"""Migrations: up and down on both backends, and the models match the migrated schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from clarion import schema
from clarion.db import Base, get_engine


def test_models_and_migrations_agree(settings):
    engine = get_engine(settings.database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models differ from migrations; add a migration: {diff}"


def test_downgrade_to_nothing_and_back(settings, tmp_path, backend, request):
    if backend.name == "postgresql":
        url = request.getfixturevalue("pg_server").create_database("clarion_migrations")
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    schema.upgrade(url)
    schema.downgrade(url, "base")
    with get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 0
    schema.upgrade(url)
    with get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM subscribers").scalar() == 0
