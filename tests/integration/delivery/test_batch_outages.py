"""A batch when Redis, the broker or the database fails under it, and on a slow server.

In this process, against a private Redis that the test stops mid-batch, a counting SMTP server
on loopback and the test database: outcomes are recorded before anything is given back, unsent
rows go back to the queue, and a batch that makes progress keeps its claims past the lease.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clarion import jobqueue
from clarion.bounces.refusals import BatchRefusals
from clarion.config import get_settings, reset_settings
from clarion.db import session_scope, utcnow
from clarion.delivery import dispatch, sending
from clarion.models import Alert, AlertStatus, Delivery, DeliveryBatch, DeliveryStatus
from clarion.redisconn import reset_redis
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list
from tests.services import RedisServer, free_port


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def queue() -> Iterator[InlineQueue]:
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.fixture
def configure(settings, monkeypatch, private_redis):
    """Point this process at the fault server and the private Redis."""

    def apply(server: FaultServer, **env: str):
        values = {
            "CLARION_SMTP_URL": server.url,
            "CLARION_REDIS_URL": private_redis.url,
            "CLARION_RETRY_BASE_SECONDS": "0.05",
            "CLARION_RETRY_MAX_SECONDS": "0.2",
            **env,
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        reset_redis()
        return get_settings()

    yield apply
    reset_redis()


def dispatched(session, alert: Alert) -> list[tuple[int, int]]:
    """Start the alert and write its ledger; returns its batches (first id, last id)."""
    sending.start(session, alert)
    session.commit()
    dispatch.dispatch(alert.id)
    refresh(session)
    return [
        (b.first_id, b.last_id)
        for b in session.scalars(
            select(DeliveryBatch)
            .where(DeliveryBatch.alert_id == alert.id)
            .order_by(DeliveryBatch.first_id)
        )
    ]


def statuses(session, alert_id: int) -> dict[str, int]:
    refresh(session)
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.status)
    )
    return {DeliveryStatus(s).value: n for s, n in rows}


def test_redis_lost_mid_batch_every_250_is_recorded_and_the_rest_queued(
    session, configure, queue, private_redis
):
    """The old batch released its Redis slot before writing outcomes: Redis gone, none written."""
    alerts = make_list(session)
    make_audience(session, alerts, 200)
    stop_at = 60

    def lose_redis(accepted: int) -> None:
        if accepted == stop_at:
            private_redis.stop()

    with FaultServer(Plan(on_accept=lose_redis)) as server:
        configure(server, CLARION_BATCH_SIZE="200")
        alert = make_alert(session, [alerts])
        [(first, last)] = dispatched(session, alert)
        sent = dispatch.send_batch(alert.id, first, last, BatchRefusals)  # must not raise
        accepted = server.handler.accepted
        counts = statuses(session, alert.id)
        assert sent == accepted >= stop_at
        # Every message the server took is recorded as sent; nothing is left claimed.
        assert counts == {"sent": accepted, "queued": 200 - accepted}

        private_redis.start()  # Redis is back: the rest goes out, nobody twice
        reset_redis()
        dispatch.send_batch(alert.id, first, last, BatchRefusals)
    assert statuses(session, alert.id) == {"sent": 200}
    assert len(server.handler.counts) == 200 and server.handler.duplicates() == 0


def test_a_broker_outage_after_a_batch_does_not_stop_the_alert_finishing(session, configure):
    """kombu's OperationalError used to escape after_batch, which then never finished the alert."""
    import tasks  # here, not at collection: importing it binds Celery to the current settings

    alerts = make_list(session)
    make_audience(session, alerts, 5)
    with FaultServer() as server:
        settings = configure(server)
        alert = make_alert(session, [alerts])
        inline = InlineQueue()
        previous = jobqueue.set_backend(inline)
        try:
            [(first, last)] = dispatched(session, alert)
        finally:
            jobqueue.set_backend(previous)
        # The real Celery publisher, on a broker nobody listens on.
        dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
        celery = tasks.make_celery(dead)
        celery.conf.broker_connection_max_retries = 1
        celery.conf.broker_transport_options = {"max_retries": 1, "interval_start": 0}
        previous = jobqueue.set_backend(tasks.publisher(celery))
        try:
            with pytest.raises(jobqueue.QueueUnavailable):
                jobqueue.enqueue("tasks.delivery.refill", alert.id)
            assert dispatch.send_batch(alert.id, first, last, BatchRefusals) == 5
        finally:
            jobqueue.set_backend(previous)
    refresh(session)
    assert session.get(Alert, alert.id).status == AlertStatus.SENT


def test_a_batch_on_a_slow_server_keeps_its_claims_and_connection_past_the_lease(
    session, configure, queue
):
    """It used to stop at half the lease and go back to the queue; now it renews its lease."""
    alerts = make_list(session)
    make_audience(session, alerts, 12)
    with FaultServer(Plan(delay=0.3)) as server:
        configure(server, CLARION_SEND_LEASE_SECONDS="2", CLARION_BATCH_SIZE="12")
        alert = make_alert(session, [alerts])
        [(first, last)] = dispatched(session, alert)
        reclaimed: list[int] = []
        done = threading.Event()

        def sweep() -> None:
            # The sweep runs all along; a live batch's rows must never look abandoned.
            while not done.is_set():
                cutoff = utcnow() - timedelta(seconds=get_settings().send_lease_seconds)
                with session_scope() as s:
                    reclaimed.append(dispatch._reclaim(s, alert.id, AlertStatus.SENDING, cutoff))
                time.sleep(0.2)

        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        started = time.monotonic()
        try:
            sent = dispatch.send_batch(alert.id, first, last, BatchRefusals)
        finally:
            done.set()
            sweeper.join()
        took = time.monotonic() - started
    assert took > 1.5 * get_settings().send_lease_seconds  # the batch really outlived its lease
    assert sent == 12 and not any(reclaimed)
    assert server.handler.sessions == 1 and server.handler.duplicates() == 0
    assert statuses(session, alert.id) == {"sent": 12}


def test_the_sweep_settles_abandoned_claims_from_the_send_journal(session, configure, queue):
    """A killed worker's journal decides: sent stays sent, in flight counts as a maybe-twice."""
    from clarion.delivery import journal, ledger
    from clarion.redisconn import get_redis

    alerts = make_list(session)
    make_audience(session, alerts, 4)
    with FaultServer() as server:
        configure(server)
        alert = make_alert(session, [alerts])
        [(first, last)] = dispatched(session, alert)
        long_ago = utcnow() - timedelta(hours=1)
        with session_scope() as s:
            sent, doubtful, refused, untouched = ledger.claim(s, alert.id, first, last, long_ago)
        writer = journal.Journal(get_redis(), alert.id)
        writer.attempt(sent)
        writer.sent(sent, "primary", "<m1@clarion.test>", "250 2.0.0 OK: queued as 7")
        writer.attempt(doubtful)
        writer.attempt(refused)
        writer.not_taken(refused)
        writer.settle([])
        writer.close()
        assert dispatch.reclaim_stale()["reclaimed"] == 4
    refresh(session)
    rows = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.alert_id == alert.id))}
    assert rows[sent].status == DeliveryStatus.SENT and rows[sent].attempts == 1
    assert rows[sent].message_id == "<m1@clarion.test>" and rows[sent].server == "primary"
    assert "250 2.0.0 OK: queued as 7" in rows[sent].last_reply
    assert rows[doubtful].status == DeliveryStatus.QUEUED and rows[doubtful].attempts == 1
    for other in (refused, untouched):
        assert rows[other].status == DeliveryStatus.QUEUED and rows[other].attempts == 0
    assert session.get(Alert, alert.id).possible_duplicates == 1
    assert not get_redis().exists(journal.journal_key(alert.id))
