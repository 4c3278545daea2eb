"""The PostgreSQL pool: a connection in steady use is not pinged before every request, one idle
for a while is, and a dead one is replaced without the caller seeing an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from clarion import db
from tests.pgtrace import own_database, statements_sent


@pytest.fixture
def pg_url(backend, pg_server) -> Iterator[str]:
    yield from own_database(
        backend,
        pg_server,
        "clarion_pool",
        "the ping before use is PostgreSQL's pool (SQLite opens a file)",
    )


def _traced(url: str, trace: Path) -> list[str]:
    """The statements the pooled connection sent to the server while running one."""

    def one_select() -> None:
        with db.get_engine(url).connect() as connection:
            assert connection.scalar(text("SELECT 41 + 1")) == 42

    return statements_sent(url, trace, one_select)


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
