"""The PostgreSQL pool: a connection in steady use is not pinged before every request, one idle
for a while is, and a dead one is replaced without the caller seeing an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from clarion import db


@pytest.fixture
def pg_url(backend, pg_server) -> Iterator[str]:
    if backend.name != "postgresql":
        pytest.skip("the ping before use is PostgreSQL's pool (SQLite opens a file)")
    url = pg_server.create_database("clarion_pool")
    yield url
    db.get_engine(url).dispose()


def _traced(url: str, trace: Path) -> list[str]:
    """The statements the pooled connection sent to the server while running one."""
    engine = db.get_engine(url)
    fairy = engine.raw_connection()  # the pool's only connection, checked out and back in
    pgconn = fairy.driver_connection.pgconn
    fairy.close()
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        try:
            with engine.connect() as connection:
                assert connection.scalar(text("SELECT 41 + 1")) == 42
        finally:
            pgconn.untrace()
    # libpq's trace: time, F (from us) or B (from the server), length, message, its text.
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    sent = [f[4] for f in lines if len(f) > 4 and f[1] == "F" and f[3] in ("Query", "Parse")]
    return [s.strip().strip('"') for s in sent]


def test_a_connection_used_just_now_is_not_pinged_again(pg_url, tmp_path):
    sent = _traced(pg_url, tmp_path / "trace")
    assert sent == ["BEGIN", "SELECT 41 + 1", "ROLLBACK"]


def test_a_connection_idle_longer_than_the_threshold_is_pinged(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", -1.0)
    sent = _traced(pg_url, tmp_path / "trace")
    assert len(sent) == 4 and sent[1:] == ["BEGIN", "SELECT 41 + 1", "ROLLBACK"], sent


def test_an_idle_connection_the_server_dropped_is_replaced_unseen(pg_url, monkeypatch):
    engine = db.get_engine(pg_url)
    with engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", -1.0)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT pg_backend_pid()")) != pid
