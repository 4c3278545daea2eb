"""The test run's shared Celery worker takes only the tasks of tests that ask for it.

A worker left running by an earlier module once took a later test's confirmation mail and wrote
to SQLite between that test's read and its write ("database is locked"). These tests run in
order: the first starts the worker and sees it work, the second publishes without asking for it.
"""

from __future__ import annotations

import time

import redis

from tests.helpers import wait_until


def _publish_probe(settings) -> None:
    import tasks

    # A real task on the default queue; the database is empty, so it changes nothing.
    tasks.make_celery(settings).send_task("tasks.maintenance.purge_expired")


def _queued(settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return client.llen("default")
    finally:
        client.close()


def test_a_test_that_asks_for_the_worker_has_its_tasks_taken(settings, worker):
    _publish_probe(settings)
    assert wait_until(lambda: _queued(settings) == 0, timeout=10.0, every=0.05), (
        "the worker took nothing"
    )


def test_a_test_that_does_not_ask_keeps_its_tasks_in_the_queue(settings):
    _publish_probe(settings)
    # A paused worker's last poll may pop the task and put it back ("No consumers"): the
    # queue can be empty for a moment, so look after a while, not as soon as it empties.
    time.sleep(2.0)
    assert _queued(settings) == 1, "a worker took a task of a test that did not ask for one"


def test_the_worker_takes_tasks_again_when_asked(settings, worker):
    _publish_probe(settings)
    assert wait_until(lambda: _queued(settings) == 0, timeout=10.0, every=0.05), (
        "the worker stayed paused"
    )
