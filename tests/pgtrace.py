"""PostgreSQL's own view of what we send: libpq's trace of the pool's one connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clarion import db


def own_database(backend, pg_server, name: str, why_not_sqlite: str) -> Iterator[str]:
    """A database of its own (its engine's pool holds the one connection a trace watches);
    the test is skipped on SQLite with `why_not_sqlite`. For a yielding fixture."""
    if backend.name != "postgresql":
        pytest.skip(why_not_sqlite)
    url = pg_server.create_database(name)
    yield url
    db.get_engine(url).dispose()


def statements_sent(url: str, trace: Path, run: Callable[[], None]) -> list[str]:
    """The statements (simple queries and parses) the pooled connection sent while `run` ran."""
    engine = db.get_engine(url)
    fairy = engine.raw_connection()  # the pool's only connection, checked out and back in
    pgconn = fairy.driver_connection.pgconn
    fairy.close()
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        try:
            run()
        finally:
            pgconn.untrace()
    # libpq's trace: time, F (from us) or B (from the server), length, message, its text.
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    sent = [f[4] for f in lines if len(f) > 4 and f[1] == "F" and f[3] in ("Query", "Parse")]
    return [s.strip().strip('"') for s in sent]
