"""Celery adapter: the app from Clarion's settings; tasks load ids and call clarion.*."""

from __future__ import annotations

import contextlib
import threading
import time
from urllib.parse import urlsplit

import kombu.exceptions
import redis
from celery import Celery
from celery.signals import worker_process_init, worker_ready

from clarion import jobqueue
from clarion.config import Settings, get_settings
from clarion.config.instance import make_private
from tasks import broker

TASK_MODULES = [
    "tasks.mail",
    "tasks.maintenance",
    "tasks.imports",
    "tasks.delivery",
    "tasks.bounces",
    "tasks.clicks",
    "tasks.petitions",
    "tasks.feeds",
    "tasks.webhooks",
    "tasks.series",
]


def make_celery(settings: Settings) -> Celery:
    """A Celery app on Clarion's Redis, with at-least-once delivery of every task."""
    celery = Celery("clarion", broker=settings.redis_url, include=TASK_MODULES)
    celery.conf.update(
        task_ignore_result=True,
        # Late acks + reject on worker loss: a task killed mid-way runs again elsewhere.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Above the longest task, so Redis does not redeliver a task that is still running.
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        task_default_queue="default",
        # Webhook deliveries have a queue of their own: a backlog of thousands of events
        # (each an HTTP call to a receiver that may be slow) must not stand between a reader
        # and their confirmation mail on `default`. A worker takes from its queues in turn.
        task_routes={"tasks.delivery.*": {"queue": "bulk"}, "tasks.webhooks.*": {"queue": "hooks"}},
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        worker_hijack_root_logger=False,
    )
    if urlsplit(settings.redis_url).scheme == "redis":
        # kombu's own transport for this scheme, keeping its Redis client (tasks/broker.py);
        # rediss:// and unix:// keep kombu's choice untouched.
        celery.conf.broker_transport = broker.TRANSPORT
    return celery


def beat_schedule(settings: Settings | None = None) -> dict[str, dict]:
    """Periodic work; due alerts themselves live in the database, beat only polls."""
    settings = settings or get_settings()
    schedule = {
        "purge-expired": {"task": "tasks.maintenance.purge_expired", "schedule": 3600.0},
        "purge-job-files": {"task": "tasks.imports.purge_job_files", "schedule": 3600.0},
        "start-due-alerts": {
            "task": "tasks.delivery.start_due",
            "schedule": settings.sweep_seconds,
            "options": {"expires": settings.sweep_seconds},
        },
        # Each feed is fetched every CLARION_FEED_POLL_SECONDS; this only looks for those due.
        "poll-feeds": {
            "task": "tasks.feeds.poll_due",
            "schedule": settings.sweep_seconds,
            "options": {"expires": settings.sweep_seconds},
        },
        # Series: readers whose next step fell due go into its ledger (clarion.series.tick).
        "series-tick": {
            "task": "tasks.series.tick",
            "schedule": settings.sweep_seconds,
            "options": {"expires": settings.sweep_seconds},
        },
        # Abandoned claims, lost batch tasks, retries falling due: the delivery ledger's sweep.
        "delivery-sweep": {
            "task": "tasks.delivery.reclaim_stale",
            "schedule": settings.sweep_seconds,
            "options": {"expires": settings.sweep_seconds},
        },
        # Webhook retries fallen due, and deliveries whose publishing or worker was lost.
        "webhook-sweep": {
            "task": "tasks.webhooks.sweep",
            "schedule": 30.0,
            "options": {"expires": 30},
        },
        # "Stay subscribed?" mails past their deadline: their readers who did not stay leave.
        "remove-unstayed": {
            "task": "tasks.maintenance.remove_unstayed",
            "schedule": settings.sweep_seconds,
            "options": {"expires": settings.sweep_seconds},
        },
        # Confirmation mails owed whose task was lost or ran out of retries (clarion.delivery.owed).
        "confirmation-sweep": {
            "task": "tasks.mail.sweep_confirmations",
            "schedule": 60.0,
            "options": {"expires": 60},
        },
        # Inbound messages whose processing task was lost or failed.
        "inbound-sweep": {"task": "tasks.bounces.sweep_inbound", "schedule": 60.0},
        # Clicks and opens wait in Redis until this writes them; a late run is dropped, not queued.
        "flush-events": {
            "task": "tasks.clicks.flush_events",
            "schedule": 5.0,
            "options": {"expires": 30},
        },
    }
    if settings.bounces.imap is not None:
        interval = settings.bounces.imap_interval
        schedule["imap-poll"] = {
            "task": "tasks.bounces.poll_imap",
            "schedule": interval,
            "options": {"expires": interval},
        }
    return schedule


def publisher(celery: Celery) -> jobqueue.Backend:
    """The domain's task port, publishing through this Celery app by task name."""

    def publish(name: str, args, countdown: float | None) -> None:
        try:
            celery.send_task(name, args=list(args), countdown=countdown)
        except kombu.exceptions.OperationalError as exc:
            raise jobqueue.QueueUnavailable(f"{name}: {exc}") from exc

    return publish


@worker_ready.connect
def _announce(sender=None, **_kwargs: object) -> None:
    # The main process says it is alive every few seconds, so that a stalled send can say
    # "no worker is running" (clarion.delivery.health). Pool children do not announce.
    from clarion.delivery import health

    queues = sorted(sender.app.amqp.queues.consume_from) if sender is not None else []
    name = getattr(sender, "hostname", None) or "worker"

    def beat() -> None:
        while True:
            # Redis away: the next beat tries again.
            with contextlib.suppress(redis.RedisError):
                health.worker_heartbeat(name, queues)
            time.sleep(health.HEARTBEAT_SECONDS)

    threading.Thread(target=beat, name="clarion-heartbeat", daemon=True).start()


@worker_process_init.connect
def _after_fork(**_kwargs: object) -> None:
    # Connections must not be shared with the parent process across fork.
    from clarion.db import dispose_engines
    from clarion.redisconn import reset_redis

    dispose_engines()
    reset_redis()


make_private(get_settings().instance_dir)
app = make_celery(get_settings())
jobqueue.set_backend(publisher(app))
