"""Database engine, sessions and the declarative Base shared by every model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    literal,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Clarion stores aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL lets the web, the workers and beat read while one of them writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    # Let SQLAlchemy's "begin" event emit BEGIN IMMEDIATE instead of pysqlite's lazy BEGIN.
    dbapi_conn.isolation_level = None  # type: ignore[attr-defined]


_engines: dict[str, Engine] = {}
_factories: dict[tuple[str, bool, bool], sessionmaker[Session]] = {}


def get_engine(url: str) -> Engine:
    """One engine per database URL per process."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = _create_engine(url)
    return engine


# A pooled connection idle longer than this is pinged before use (a restarted server left it
# dead); one used more recently is not: a busy web process would otherwise spend one round
# trip of every request on the ping.
PING_IDLE_SECONDS = 1.0


def _ping_if_idle(engine: Engine) -> Any:
    def ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("clarion_checked_in", 0.0) <= PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # what pool_pre_ping sends: an empty statement
        except Exception as exc:  # any failure: the pool discards it and connects afresh
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc

    return ping


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["clarion_checked_in"] = time.monotonic()


def _create_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_size=5, max_overflow=10)
        event.listen(engine, "connect", _note_checkin)  # new: no ping on its first checkout
        event.listen(engine, "checkout", _ping_if_idle(engine))
        event.listen(engine, "checkin", _note_checkin)
        return engine
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(conn: Connection) -> None:
    # A deferred SQLite transaction that reads and then writes fails at once (no busy wait)
    # if another process committed in between; writers therefore take the lock up front.
    # Readers stay deferred, so that in WAL mode they never wait for a writer.
    if conn.get_execution_options().get("clarion_reader"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _session_factory(url: str, reader: bool, read_only: bool = False) -> sessionmaker[Session]:
    factory = _factories.get((url, reader, read_only))
    if factory is None:
        engine = get_engine(url)
        if reader or read_only:
            engine = engine.execution_options(clarion_reader=True)
        if read_only and engine.dialect.name == "postgresql":
            # No BEGIN before the first statement and no ROLLBACK at the end: two round trips
            # of every read. Under READ COMMITTED each statement has its own snapshot anyway.
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        if read_only:
            event.listen(factory, "before_flush", _refuse_writes)
        _factories[(url, reader, read_only)] = factory
    return factory


class ReadOnlySessionError(RuntimeError):
    """A read-only session was asked to write."""


def _refuse_writes(_session: Session, _context: Any, _instances: Any) -> None:
    # Without a transaction each statement would commit by itself, so a write would not be
    # all-or-nothing; a read-only session must never be given one.
    raise ReadOnlySessionError("This session only reads; write in a session of your own.")


def session_factory(
    url: str | None = None, *, reader: bool = False, read_only: bool = False
) -> sessionmaker[Session]:
    """The sessionmaker for the configured (or given) database.

    `reader=True` is for sessions that mostly read (page views): on SQLite they do not take
    the write lock when they begin. Elsewhere it makes no difference.
    `read_only=True` is for sessions that never write (API reads): on PostgreSQL they run
    without a transaction, each statement on its own (as READ COMMITTED sees it anyway), and
    on every database a flush raises ReadOnlySessionError.
    """
    if url is None:
        from clarion.config import get_settings

        url = get_settings().database_url
    return _session_factory(url, reader, read_only)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Close every pooled connection (after a fork, and between tests)."""
    for engine in _engines.values():
        engine.dispose()


def insert_for(session: Session):
    """The dialect's INSERT, for ON CONFLICT DO NOTHING."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# Memory a set-based audience query may hash with (per hash, per process), within it.
SET_BASED_WORK_MEM = "64MB"


_SETTINGS = ("jit", "work_mem", "max_parallel_workers_per_gather")


@contextmanager
def set_based(session: Session, parallel: bool = True) -> Iterator[None]:
    """Within it, PostgreSQL runs this session's statements as suits one set-based audience
    query (back as it was after), a no-op on SQLite:

    - no JIT: the query's high cost estimate made PostgreSQL compile it, ~175 ms of a 690 ms
      segment count at 300,000 readers, for no faster run;
    - `work_mem` of SET_BASED_WORK_MEM rather than 4 MB, so that the set of readers who
      clicked lately is one hash (segments._active), not a probe of clicks per reader;
    - with `parallel` False, no parallel workers: for a query that runs beside another on
      purpose (a segment's readers chosen while the ledger is written, delivery.members).

    (bench/README.md, Segments.)"""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    was = session.execute(text(f"SELECT {', '.join(_current(n) for n in _SETTINGS)}")).one()
    now = {"jit": "off", "work_mem": SET_BASED_WORK_MEM}
    if not parallel:
        now["max_parallel_workers_per_gather"] = "0"
    _set_local(session, now)
    yield
    # Not in a finally: after an error the transaction is aborted and refuses this statement
    # (it would hide the error); its rollback undoes the settings anyway (they are local to it).
    _set_local(session, dict(zip(_SETTINGS, was, strict=True)))


def _current(name: str) -> str:
    return f"current_setting('{name}')"


def _set_local(session: Session, values: dict[str, str]) -> None:
    # set_config(..., true) is SET LOCAL: undone with the transaction whatever happens.
    calls = ", ".join(f"set_config('{name}', :{name}, true)" for name in values)
    session.execute(text(f"SELECT {calls}"), values)


def among(session: Session, column: Any, values: list | set) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`: one parameter, not hundreds.

    psycopg parses a statement with 250 placeholders in about 2 ms, on every batch; and a
    statement whose text does not change with the number of values is prepared once. The
    array goes as one array literal in text, which PostgreSQL casts: psycopg's own list
    adapter inspects every element to choose a type (90 µs for 50 ids, 11 µs as text).
    """
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        return column.in_(values)
    literal_text = among_values(dialect, column, values)
    return column == any_(cast(literal(literal_text, Text()), ARRAY(_array_type(column))))


def among_bound(dialect: str, column: Any, name: str) -> Any:
    """`among` with its values left as the bind parameter `name`, for a statement built once
    per process; execute it with `{name: among_values(dialect, column, values)}`."""
    if dialect != "postgresql":
        return column.in_(bindparam(name, expanding=True))
    return column == any_(cast(bindparam(name, type_=Text()), ARRAY(_array_type(column))))


def among_values(dialect: str, column: Any, values: list | set) -> Any:
    """The values of an `among_bound` parameter: on PostgreSQL one array literal in text."""
    if dialect != "postgresql":
        return list(values)
    if isinstance(column.type, Integer | BigInteger):
        return "{" + ",".join(str(int(v)) for v in values) + "}"
    return "{" + ",".join(_array_item(str(v)) for v in values) + "}"


def _array_type(column: Any) -> Any:
    return BigInteger() if isinstance(column.type, Integer | BigInteger) else Text()


def _array_item(value: str) -> str:
    # Quoted, so that commas, braces, spaces and the word NULL are only text.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
