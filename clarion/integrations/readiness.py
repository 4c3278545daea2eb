"""Readiness for load balancers: database, Redis and broker answer; the schema is current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from clarion import schema
from clarion.config import get_settings
from clarion.db import get_engine
from clarion.redisconn import get_redis

# Celery's queues: the broker is the same Redis (tasks/__init__.py), read as Celery reads it.
QUEUES = ("default", "hooks", "bulk")


@dataclass
class Readiness:
    """Each check by name, with what failed; ready when nothing did."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())


@lru_cache(maxsize=4)
def _head(database_url: str) -> str | None:
    return ScriptDirectory.from_config(schema.alembic_config(database_url)).get_current_head()


def _database() -> str:
    with get_engine(get_settings().database_url).connect() as conn:
        conn.execute(text("SELECT 1"))
    return "ok"


def _migrations() -> str:
    url = get_settings().database_url
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = _head(url)
    if current == head:
        return "ok"
    return f"schema at {current}, the code expects {head}: run clarion db upgrade"


def _redis() -> str:
    get_redis().ping()
    return "ok"


def _broker() -> str:
    redis = get_redis()
    pipe = redis.pipeline()
    for queue in QUEUES:
        pipe.llen(queue)
    pipe.execute()
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "migrations": _migrations,
    "redis": _redis,
    "broker": _broker,
}


def check() -> Readiness:
    """Run every check; a failing one says what went wrong instead of raising."""
    result = Readiness()
    for name, run in CHECKS.items():
        try:
            result.checks[name] = run()
        except Exception as exc:
            result.checks[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return result
