"""Column types shared by the models: ids, enums stored as strings, JSON, UTC times."""

from __future__ import annotations

import enum
import secrets

from sqlalchemy import JSON, BigInteger, Enum, Integer
from sqlalchemy.dialects.postgresql import JSONB

from clarion.db import UTCDateTime

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = UTCDateTime


def str_enum(cls: type[enum.Enum]) -> Enum:
    """An enum stored as its string value, without a database CHECK, so new states need no DDL."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def new_uid() -> str:
    """A random public identifier (128 bits), for URLs that must not be guessable."""
    return secrets.token_urlsafe(16)
