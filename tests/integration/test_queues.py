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


def test_publishing_keeps_one_redis_client_per_channel_and_the_message_arrives(settings):
    import redis

    import tasks
    from tasks import broker

    celery = tasks.make_celery(settings)
    queue = "test-kept-client"
    made = []
    with celery.producer_pool.acquire(block=True) as producer:
        assert isinstance(producer.channel, broker.Channel)
        for n in range(3):
            celery.send_task(
                "tasks.mail.send_confirmation", args=[n], queue=queue, producer=producer
            )
            made.append(producer.channel._kept)
    assert made[0] is not None and made.count(made[0]) == 3
    waiting = redis.Redis.from_url(settings.redis_url)
    try:
        assert waiting.llen(queue) == 3
    finally:
        waiting.delete(queue)


@pytest.mark.parametrize("url", ["rediss://127.0.0.1:6380/0", "unix:///run/redis.sock"])
def test_other_redis_schemes_keep_kombus_own_transport(settings, url):
    import dataclasses

    import tasks

    other = tasks.make_celery(dataclasses.replace(settings, redis_url=url))
    assert other.conf.broker_transport is None
