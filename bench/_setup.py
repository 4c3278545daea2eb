"""Shared set-up for the benchmarks: a private PostgreSQL or a SQLite file, migrated, configured."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
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


def start_bulk_worker(
    env: dict[str, str], concurrency: int, log: Path, name: str, queues: str = "bulk"
) -> subprocess.Popen:
    """`celery -A tasks worker -Q bulk` (or `queues`) in its own session; returns once its
    pool consumes."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",  # "ready." is logged at INFO: without it the wait below never ends
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}@%h",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 300  # many pool processes start slowly on a busy machine
    while b"ready." not in log.read_bytes():
        if time.time() > deadline or worker.poll() is not None:
            raise SystemExit(log.read_text()[-3000:])
        time.sleep(0.1)
    return worker


def write_readme_section(title: str, section: str, readme: Path | None = None) -> None:
    """Replace (or add) the "## <title>" section of bench/README.md, leaving the others alone."""
    readme = readme or Path(__file__).resolve().parent / "README.md"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    readme.write_text(text)
