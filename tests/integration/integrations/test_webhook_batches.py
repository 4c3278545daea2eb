"""Webhooks delivered in batches per endpoint: one queued task per endpoint however many
events, each event once and in order over a kept-alive connection, each message still signed
on its own; failures half-way keep the rest pending with backoff; racing workers share."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from clarion import outbox
from clarion.db import session_scope, utcnow
from clarion.integrations import webhooks
from clarion.models import WebhookDelivery
from tests.helpers import refresh
from tests.webhookreceiver import Receiver, running

EVENT = "subscriber.confirmed"


def register(session, owner, receiver: Receiver):
    endpoint, secret = webhooks.create_endpoint(session, owner, receiver.url, [EVENT])
    session.commit()
    receiver.secrets.append(secret)
    return endpoint


def record_events(count: int, per_transaction: int = 10) -> None:
    """`count` events, committed a few a transaction as the application writes them."""
    for start in range(0, count, per_transaction):
        with session_scope() as session:
            for n in range(start, min(count, start + per_transaction)):
                outbox.record(session, EVENT, {"n": n}, f"r{n}@example.net")


def rows(session) -> list[WebhookDelivery]:
    refresh(session)
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def numbers(receiver: Receiver) -> list[int]:
    return [got.json["data"]["n"] for got in receiver.received]


def test_many_events_make_one_task_and_arrive_once_each_in_order_over_few_connections(
    session, loopback, published, make_editor
):
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
        record_events(30)
        # Three commits, one task: the flag says one is queued already.
        assert published == [(outbox.BATCH_TASK, (endpoint.id,), None)]
        counts = webhooks.deliver_endpoint(endpoint.id, size=10)
    assert counts["delivered"] == 30
    assert numbers(receiver) == list(range(30))
    assert all(got.verified_by == receiver.secrets for got in receiver.received)
    assert len({got.id for got in receiver.received}) == 30  # each its own webhook-id
    # Batches of 10 (no more: PostgreSQL once claimed all 30 at once), each over one kept-alive
    # connection, not one an event.
    assert receiver.connections == 3
    assert {(r.state, r.attempts, r.claimed_until) for r in rows(session)} == {
        ("delivered", 1, None)
    }
    # The task started, so the flag is down: the next commit queues a task again.
    published.clear()
    record_events(1)
    assert published == [(outbox.BATCH_TASK, (endpoint.id,), None)]


def test_a_receiver_failing_half_way_leaves_the_rest_pending_with_backoff(
    session, loopback, published, make_editor
):
    owner = make_editor("owner")[0]
    with running(Receiver(script=[200] * 4 + [500] * 6)) as receiver:
        endpoint = register(session, owner, receiver)
        record_events(10)
        now = utcnow()
        counts = webhooks.deliver_endpoint(endpoint.id, now=now)
        assert (counts["delivered"], counts["pending"]) == (4, 6)
        after = rows(session)
        assert [r.state for r in after] == ["delivered"] * 4 + ["pending"] * 6
        retry = now + timedelta(seconds=webhooks.FIRST_DELAY)
        assert {(r.attempts, r.last_status, r.next_attempt_at) for r in after[4:]} == {
            (1, 500, retry)
        }
        # One wake-up for the retries, when they fall due (not one per delivery).
        wake = (outbox.BATCH_TASK, (endpoint.id,), webhooks.FIRST_DELAY)
        assert [p for p in published if p[2]] == [wake]
        assert webhooks.deliver_endpoint(endpoint.id, now=now + timedelta(seconds=5)) == {
            "delivered": 0,
            "pending": 0,
            "failed": 0,
        }
        webhooks.deliver_endpoint(endpoint.id, now=retry)
    assert numbers(receiver) == list(range(10)) + list(range(4, 10))
    assert {r.state for r in rows(session)} == {"delivered"}
    first, again = receiver.received[4], receiver.received[10]
    assert first.id == again.id and again.verified_by  # the same webhook-id, signed afresh


def test_an_unreachable_receiver_holds_back_the_whole_batch_until_its_retry(
    session, loopback, published, make_editor
):
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
    record_events(5)  # the receiver is gone: connections are refused
    now = utcnow()
    counts = webhooks.deliver_endpoint(endpoint.id, now=now)
    assert counts["pending"] == 1  # one attempt, not five refused connections
    first, *rest = rows(session)
    retry = now + timedelta(seconds=webhooks.FIRST_DELAY)
    assert (first.attempts, first.last_status, first.next_attempt_at) == (1, None, retry)
    assert "Could not reach" in first.last_error
    assert {(r.attempts, r.next_attempt_at, r.claimed_until) for r in rest} == {(0, retry, None)}
    refresh(session)
    assert session.get(type(endpoint), endpoint.id).failing_since == now


def test_two_workers_racing_on_one_endpoint_deliver_each_event_once(
    session, loopback, published, make_editor
):
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
        record_events(60)
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                webhooks.deliver_endpoint(endpoint.id, size=5)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert not errors
    assert sorted(numbers(receiver)) == list(range(60))  # each once: no duplicate, none lost
    assert {(r.state, r.attempts) for r in rows(session)} == {("delivered", 1)}


def test_a_disabled_endpoint_gets_nothing_more(session, loopback, published, make_editor):
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
        record_events(3)
        webhooks.update_endpoint(session, owner, endpoint, receiver.url, [EVENT], enabled=False)
        session.commit()
        webhooks.deliver_endpoint(endpoint.id)
    assert receiver.received == []
    assert {(r.state, r.last_error) for r in rows(session)} == {
        ("failed", "The endpoint is disabled.")
    }


def test_the_sweep_wakes_each_endpoint_once_however_many_are_due(
    session, loopback, published, make_editor
):
    owner = make_editor("owner")[0]
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
    record_events(20)
    webhooks.deliver_endpoint(endpoint.id, now=utcnow())  # the task ran: the flag is down
    published.clear()
    later = utcnow() + timedelta(hours=1)
    assert webhooks.sweep(now=later) == [endpoint.id]
    assert webhooks.sweep(now=later) == [endpoint.id]  # found again, but queued already
    assert published == [(outbox.BATCH_TASK, (endpoint.id,), None)]


def test_a_receiver_that_closes_each_connection_gets_a_new_one_for_the_next_event(
    session, loopback, published, make_editor
):
    owner = make_editor("owner")[0]
    with running(Receiver(keep_alive=False)) as receiver:
        endpoint = register(session, owner, receiver)
        record_events(4)
        assert webhooks.deliver_endpoint(endpoint.id)["delivered"] == 4
    assert numbers(receiver) == [0, 1, 2, 3] and receiver.connections == 4
