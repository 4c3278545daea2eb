"""Bulk inserts for imports: COPY on PostgreSQL, batched executemany on SQLite."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in the session's transaction."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, table, rows)
    else:
        session.execute(insert(table), list(rows))


def _copy(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    # COPY is several times faster than even batched INSERTs, and psycopg need not parse a
    # statement with thousands of placeholders (see bench/README.md).
    columns = list(rows[0])
    for name in columns:
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name}")
    driver = session.connection().connection.driver_connection
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        converters = [_converter(table.c[name].type) for name in columns]
        for row in rows:
            copy.write_row(
                [convert(row[name]) for convert, name in zip(converters, columns, strict=True)]
            )


def _converter(column_type: Any):
    if isinstance(column_type, JSON):
        return lambda value: None if value is None else json.dumps(value)
    return lambda value: value.value if isinstance(value, enum.Enum) else value
