"""Read-only sessions (the API's reads): no transaction round trips on PostgreSQL, no write
anywhere, and the pooled connection is an ordinary one again for the next session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from clarion import db
from clarion.models import Tag


@pytest.fixture
def pg_url(backend, pg_server) -> Iterator[str]:
    """A database of its own: its engine's pool holds the one connection the trace watches."""
    if backend.name != "postgresql":
        pytest.skip("SQLite has no round trips to save")
    url = pg_server.create_database("clarion_read_only")
    yield url
    db.get_engine(url).dispose()


def _sent(url: str, trace: Path, read_only: bool) -> list[str]:
    """The statements one session (read-only or not) sent to PostgreSQL for one SELECT."""
    engine = db.get_engine(url)
    fairy = engine.raw_connection()  # the pool's only connection, checked out and back in
    pgconn = fairy.driver_connection.pgconn
    fairy.close()
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        try:
            with db.session_factory(url, read_only=read_only)() as session:
                assert session.scalar(text("SELECT 41 + 1")) == 42
                session.rollback()
        finally:
            pgconn.untrace()
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    sent = [f[4] for f in lines if len(f) > 4 and f[1] == "F" and f[3] in ("Query", "Parse")]
    return [s.strip().strip('"') for s in sent]


def test_a_read_only_session_sends_no_begin_nor_rollback(pg_url, tmp_path):
    assert _sent(pg_url, tmp_path / "a", read_only=True) == ["SELECT 41 + 1"]
    # The same pooled connection, in an ordinary session: a transaction again.
    sent = _sent(pg_url, tmp_path / "b", read_only=False)
    assert sent[0].startswith("BEGIN") and sent[1:] == ["SELECT 41 + 1", "ROLLBACK"], sent


def test_a_read_only_session_refuses_to_write(settings, backend):
    with db.session_factory(read_only=True)() as session:
        session.add(Tag(name="never"))
        with pytest.raises(db.ReadOnlySessionError):
            session.flush()
        session.rollback()
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Tag)) == 0
        session.add(Tag(name="written"))  # an ordinary session still writes
    with db.session_factory(read_only=True)() as session:
        assert session.scalars(select(Tag.name)).all() == ["written"]
