"""Which queue each kind of work waits in: confirmations never behind a webhook backlog.

A worker takes from its queues in turn, so work on `default` (confirmation mails, imports)
waits for at most one task of each other queue; in one queue it would wait for everything
queued before it — 10,000 webhook deliveries to a slow receiver, or a whole send's batches."""

from __future__ import annotations

import shlex

import pytest

from clarion import bootstrap
from clarion.integrations import metrics, readiness


@pytest.fixture
def router(settings):
    import tasks  # here, not at collection: importing it binds Celery to the current settings

    return tasks.make_celery(settings).amqp.router


@pytest.mark.parametrize(
    "task, queue",
    [
        ("tasks.webhooks.deliver", "hooks"),
        ("tasks.webhooks.deliver_endpoint", "hooks"),
        ("tasks.webhooks.sweep", "hooks"),
        ("tasks.mail.send_confirmation", "default"),
        ("tasks.delivery.send_batch", "bulk"),
    ],
)
def test_each_kind_of_work_has_its_queue(router, task, queue):
    assert router.route({}, task)["queue"].name == queue


def test_the_procfiles_worker_takes_from_every_queue_and_health_watches_them():
    command = shlex.split(bootstrap.procfile_entries()["worker"])
    queues = command[command.index("--queues") + 1].split(",")
    assert set(queues) == {"default", "hooks", "bulk"}
    assert set(metrics.QUEUES) == set(readiness.QUEUES) == set(queues)
