"""Webhooks paced while a send runs: at most CLARION_WEBHOOK_RATE_DURING_SEND deliveries a
second, all endpoints together, the endpoint's task ending and queueing the next when the
second's share is used; at full speed once the send is over; each event delivered once.

The tasks are run by threads of this process as workers would run them (the queue honours
countdowns), against the real Redis (the marker and the `limits` window), the database and a
receiver on loopback; the send's marker is the one the engine keeps (checked at the end).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from clarion import jobqueue, outbox
from clarion.bounces.refusals import BatchRefusals
from clarion.config import reset_settings
from clarion.db import session_scope
from clarion.delivery import dispatch, rates, sending
from clarion.integrations import webhooks
from clarion.models import WebhookDelivery
from clarion.redisconn import get_redis
from tests.helpers import refresh
from tests.sendkit import make_alert, make_audience, make_list
from tests.webhookreceiver import Receiver, running

EVENT = "subscriber.confirmed"
RATE = 10


class TimedReceiver(Receiver):
    """A receiver that notes when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def receive(self, headers, body, peer) -> int:
        self.times.append(time.monotonic())
        return super().receive(headers, body, peer)

    def busiest_second(self) -> int:
        """The most requests that arrived within any one second."""
        times = sorted(self.times)
        return max((sum(1 for t in times[i:] if t < start + 1.0) for i, start in
                    enumerate(times)), default=0)  # fmt: skip


class Workers:
    """Webhook tasks run by `n` threads as Celery workers would: each when its countdown is up."""

    def __init__(self, n: int) -> None:
        self.lock = threading.Lock()
        self.tasks: list[tuple[float, str, tuple]] = []
        self.runs: list[dict[str, int]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(n)]

    def publish(self, name: str, args: tuple, countdown: float | None) -> None:
        with self.lock:
            self.tasks.append((time.monotonic() + (countdown or 0), name, args))

    def _next(self) -> tuple[str, tuple] | None:
        with self.lock:
            due = [t for t in self.tasks if t[0] <= time.monotonic()]
            if not due:
                return None
            task = min(due)
            self.tasks.remove(task)
            return task[1], task[2]

    def _work(self) -> None:
        while not self.stop.is_set():
            task = self._next()
            if task is None:
                time.sleep(0.01)
                continue
            name, args = task
            assert name == outbox.BATCH_TASK
            counts = webhooks.deliver_endpoint(*args)
            with self.lock:
                self.runs.append(counts)

    def __enter__(self) -> Workers:
        self.previous = jobqueue.set_backend(self.publish)
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        jobqueue.set_backend(self.previous)


@pytest.fixture
def paced(loopback, monkeypatch):
    monkeypatch.setenv("CLARION_WEBHOOK_RATE_DURING_SEND", str(RATE))
    reset_settings()


@contextmanager
def send_running() -> Iterator[None]:
    """A send marked as running, as the sending workers keep it (renewed every second)."""
    done = threading.Event()

    def keep() -> None:
        while not done.is_set():
            rates.note_sending(1)
            done.wait(0.5)

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
        get_redis().delete(rates.SENDING_KEY)  # as it lapses a few seconds after the send


def register(session, owner, receiver: Receiver) -> int:
    endpoint, secret = webhooks.create_endpoint(session, owner, receiver.url, [EVENT])
    session.commit()
    receiver.secrets.append(secret)
    return endpoint.id


def record_events(start: int, count: int, per_transaction: int = 10) -> None:
    for first in range(start, start + count, per_transaction):
        with session_scope() as session:
            for n in range(first, min(start + count, first + per_transaction)):
                outbox.record(session, EVENT, {"n": n}, f"r{n}@example.net")


def wait_for(receiver: Receiver, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def numbers(receiver: Receiver) -> list[int]:
    return [got.json["data"]["n"] for got in receiver.received]


def test_during_a_send_deliveries_keep_to_the_rate_and_each_arrives_once(
    session, paced, make_editor
):
    owner = make_editor("owner")[0]
    with running(TimedReceiver()) as receiver, send_running(), Workers(2) as workers:
        register(session, owner, receiver)
        started = time.monotonic()
        record_events(0, 3 * RATE + 5)
        time.sleep(1.0)
        record_events(100, 10)  # more arrive while the pace holds the first back
        wait_for(receiver, 4 * RATE + 5)
        took = time.monotonic() - started
    # 45 events at 10 a second (the first 10 at once): at least 3.5 s; a little jitter allowed.
    assert took >= 3.0, took
    assert receiver.busiest_second() <= 2 * RATE
    assert max(run["delivered"] for run in workers.runs) <= RATE
    # Every event once, none invented, each with its own webhook-id; the rows agree.
    assert sorted(numbers(receiver)) == [*range(3 * RATE + 5), *range(100, 110)]
    assert len({got.id for got in receiver.received}) == 4 * RATE + 5
    assert all(got.verified_by == receiver.secrets for got in receiver.received)
    refresh(session)
    states = session.execute(
        select(WebhookDelivery.state, WebhookDelivery.attempts, WebhookDelivery.claimed_until)
    ).all()
    assert set(states) == {("delivered", 1, None)} and len(states) == 4 * RATE + 5


def test_when_the_send_ends_the_rest_go_at_full_speed(session, paced, make_editor, published):
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver:
        endpoint_id = register(session, owner, receiver)
        record_events(0, 5 * RATE)
        with send_running():
            published.clear()
            first = webhooks.deliver_endpoint(endpoint_id)
            # The second's share made, the task queued its successor for when the window has
            # room again (within the second), instead of making the rest at once.
            assert first["delivered"] == RATE
            [(name, args, countdown)] = published
            assert (name, args) == (outbox.BATCH_TASK, (endpoint_id,))
            assert countdown is not None and 0 < countdown <= 1.0
        # No send: the next task makes all the rest at once, and queues nothing after it.
        published.clear()
        rest = webhooks.deliver_endpoint(endpoint_id)
    assert rest["delivered"] == 4 * RATE and published == []
    assert numbers(receiver) == list(range(5 * RATE))


def test_a_rate_of_zero_means_no_pace(session, loopback, make_editor, published, monkeypatch):
    monkeypatch.setenv("CLARION_WEBHOOK_RATE_DURING_SEND", "0")
    reset_settings()
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver, send_running():
        endpoint_id = register(session, owner, receiver)
        record_events(0, 3 * RATE)
        published.clear()
        assert webhooks.deliver_endpoint(endpoint_id)["delivered"] == 3 * RATE
    assert published == []


def test_the_engine_marks_a_send_as_running_from_its_start_to_its_batches(session, published):
    assert not rates.sending_now()
    mailing_list = make_list(session)
    make_audience(session, mailing_list, 3)
    alert = make_alert(session, [mailing_list])
    session.commit()
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)  # what the callers of start() do after the commit
    assert rates.sending_now()  # from the start: dispatch is queued
    get_redis().delete(rates.SENDING_KEY)
    dispatch.dispatch(alert.id)
    assert rates.sending_now()  # writing the ledger
    get_redis().delete(rates.SENDING_KEY)
    [(_, (alert_id, first, last), _)] = [p for p in published if p[0].endswith("send_batch")]
    assert dispatch.send_batch(alert_id, first, last, BatchRefusals) == 3
    assert rates.sending_now()  # sending a batch
    assert 0 < get_redis().ttl(rates.SENDING_KEY) <= rates.SENDING_TTL  # it lapses by itself
