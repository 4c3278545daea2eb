"""Read-only sessions (the API's reads): no transaction round trips on PostgreSQL, no write
anywhere, and the pooled connection is an ordinary one again for the next session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from clarion import db
from clarion.models import Tag
from tests.pgtrace import own_database, statements_sent


@pytest.fixture
def pg_url(backend, pg_server) -> Iterator[str]:
    yield from own_database(
        backend, pg_server, "clarion_read_only", "SQLite has no round trips to save"
    )


def _sent(url: str, trace: Path, read_only: bool) -> list[str]:
    """The statements one session (read-only or not) sent to PostgreSQL for one SELECT."""

    def one_select() -> None:
        with db.session_factory(url, read_only=read_only)() as session:
            assert session.scalar(text("SELECT 41 + 1")) == 42
            session.rollback()

    return statements_sent(url, trace, one_select)


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
