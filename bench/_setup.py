"""Shared set-up for the benchmarks: a private PostgreSQL or a SQLite file, migrated, configured."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, migrated database of the given backend; Clarion's settings point at it."""
    from clarion import schema
    from clarion.config import reset_settings
    from clarion.db import dispose_engines

    workdir = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    server = None
    if backend == "postgresql":
        from tests.services import PostgresServer

        server = PostgresServer().start()
        url = server.create_database("bench")
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
    os.environ.update(
        {
            "CLARION_ENV": "test",
            "CLARION_DATABASE_URL": url,
            "CLARION_INSTANCE_DIR": str(workdir),
            "CLARION_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        }
    )
    reset_settings()
    schema.upgrade(url)
    try:
        yield url
    finally:
        dispose_engines()
        if server is not None:
            server.cleanup()


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)
