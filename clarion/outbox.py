"""The webhook outbox: events written in the transaction of the change that caused them.

The domain functions that change a reader, a signature or a send call `record()` with their
own session, so the event commits or rolls back with the change: a crash can neither lose an
event nor invent one. One delivery row per interested endpoint is written with it; once the
transaction commits, each endpoint's batch task is woken (at most one queued per endpoint,
by a flag in Redis: ten thousand events make one task, not ten thousand); the sweep of
integrations.webhooks finds any delivery whose publishing was lost.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import redis
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from clarion import jobqueue, redisconn, throttle
from clarion.db import utcnow
from clarion.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)

EVENTS = (
    "subscriber.confirmed",
    "subscriber.unsubscribed",
    "subscriber.bounced",
    "subscriber.complained",
    "subscriber.erased",
    "petition.signed",
    "alert.started",
    "alert.finished",
)
DELIVER_TASK = "tasks.webhooks.deliver"  # one delivery (resends)
BATCH_TASK = "tasks.webhooks.deliver_endpoint"  # the due deliveries of one endpoint
_PENDING = "clarion.outbox.pending"
# Set while an endpoint's batch task waits in the queue; it clears the flag as it starts. The
# expiry only bounds how long a task lost with its flag could hold back others (the sweep
# wakes the endpoint again then).
QUEUED_KEY = "clarion:webhooks:queued:{}"
QUEUED_TTL = 300


def new_message_id() -> str:
    """A Standard Webhooks message id: unguessable, stable across attempts."""
    return "msg_" + secrets.token_urlsafe(18)


def record(
    session: Session, event_type: str, payload: dict[str, Any], email: str | None = None
) -> WebhookEvent | None:
    """Write `event_type` into the outbox for each enabled endpoint that wants it; None if
    none does (nothing about a reader is stored that no one will receive).

    `email` joins the payload and its keyed hash is kept, so that erasure can scrub it.
    """
    endpoints = _endpoints_for(session, event_type)
    if not endpoints:
        return None
    body = dict(payload)
    if email is not None:
        body["email"] = email
    event = WebhookEvent(
        uid=new_message_id(),
        type=event_type,
        payload=body,
        subject_key=throttle.address_key(email) if email else None,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    _owe(session, [event.id], endpoints, event.created_at)
    return event


def record_many(session: Session, event_type: str, payloads: Sequence[dict[str, Any]]) -> int:
    """record() for many events of one type without addresses, in a few statements (a
    re-permission run unsubscribes thousands at once); returns how many were written."""
    endpoints = _endpoints_for(session, event_type)
    if not endpoints or not payloads:
        return 0
    now = utcnow()
    ids = session.scalars(
        insert(WebhookEvent).returning(WebhookEvent.id),
        [
            {"uid": new_message_id(), "type": event_type, "payload": dict(p), "created_at": now}
            for p in payloads
        ],
    ).all()
    _owe(session, ids, endpoints, now)
    return len(ids)


def _endpoints_for(session: Session, event_type: str) -> list[int]:
    if event_type not in EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    return [
        endpoint_id
        for endpoint_id, events in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.enabled)
        )
        if event_type in (events or [])
    ]


def _owe(session: Session, event_ids: Sequence[int], endpoints: list[int], now: Any) -> None:
    # One delivery row per event and endpoint.
    session.execute(
        insert(WebhookDelivery),
        [
            {"event_id": event_id, "endpoint_id": endpoint_id, "next_attempt_at": now}
            for event_id in event_ids
            for endpoint_id in endpoints
        ],
    )
    # The endpoints' batch tasks make them, woken once the transaction has committed.
    _after_commit(session, [(BATCH_TASK, endpoint_id) for endpoint_id in endpoints])


def publish_after_commit(session: Session, delivery_ids: list[int]) -> None:
    """Hand these deliveries, one task each, to the workers once the session has committed."""
    _after_commit(session, [(DELIVER_TASK, delivery_id) for delivery_id in delivery_ids])


def _after_commit(session: Session, tasks: list[tuple[str, int]]) -> None:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        sa_event.listen(session, "after_commit", _publish)
        sa_event.listen(session, "after_rollback", _forget)
    pending.extend(tasks)


def wake(endpoint_id: int, countdown: float | None = None) -> bool:
    """Queue the endpoint's batch task (to run after `countdown` seconds, or now) unless one
    is queued already; whether it was queued.

    QueueUnavailable when the broker is away (the flag is taken back: the next try queues).
    """
    key = QUEUED_KEY.format(endpoint_id)
    try:
        fresh = redisconn.get_redis().set(key, 1, nx=True, ex=QUEUED_TTL)
    except redis.RedisError:
        fresh = True  # without the flag, a task too many rather than none
    if not fresh:
        return False
    try:
        jobqueue.enqueue(BATCH_TASK, endpoint_id, countdown=countdown)
    except Exception:
        with contextlib.suppress(redis.RedisError):
            redisconn.get_redis().delete(key)
        raise
    return True


def woken(endpoint_id: int) -> None:
    """Called by the batch task as it starts: an event committed from now on queues another."""
    with contextlib.suppress(redis.RedisError):
        redisconn.get_redis().delete(QUEUED_KEY.format(endpoint_id))


def _publish(session: Session) -> None:
    tasks, session.info[_PENDING] = session.info.get(_PENDING) or [], []
    for name, ident in dict.fromkeys(tasks):  # each endpoint once, in order
        # The change is committed already and must not fail now: whatever stops the publishing
        # (the broker away), the rows wait in the database and the sweep publishes them.
        try:
            if name == BATCH_TASK:
                wake(ident)
            else:
                jobqueue.enqueue(name, ident)
        except Exception as exc:
            log.warning("webhook task %s(%s) left to the sweep: %s", name, ident, exc)


def _forget(session: Session) -> None:
    session.info[_PENDING] = []
