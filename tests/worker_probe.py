"""Loaded into test workers (`celery worker -I`): records which tasks are running, and where.

Tests share one worker; a task the previous test queued may still be writing when the next test
empties the database and begins. On SQLite that write ends the next test's read snapshot
("database is locked"). The `settings` fixture waits until no task is running before it starts
a test (`wait_until_quiet`).
"""

from __future__ import annotations

import os
import time

from celery.signals import task_postrun, task_prerun

RUNNING = "clarion-test:running"  # not "clarion:*": emptying Redis between tests keeps it

_client = None


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(os.environ["CLARION_REDIS_URL"])
    return _client


@task_prerun.connect
def _started(task_id: str | None = None, **_: object) -> None:
    _redis().hset(RUNNING, task_id or "?", os.getpid())


@task_postrun.connect
def _ended(task_id: str | None = None, **_: object) -> None:
    _redis().hdel(RUNNING, task_id or "?")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until_quiet(redis_url: str, timeout: float = 60.0) -> None:
    """Wait until no worker is running a task (tasks of killed processes do not count)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = client.hgetall(RUNNING)
            dead = [task for task, pid in running.items() if not _alive(int(pid))]
            if dead:
                client.hdel(RUNNING, *dead)
            if len(running) == len(dead):
                return
            time.sleep(0.05)
    finally:
        client.close()
