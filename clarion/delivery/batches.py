"""Handing out sending work: batches of ledger rows, a window of them per alert at a time.

The backlog lives in the database (`delivery_batches`), not in the broker. At most
CLARION_SEND_WINDOW batches of an alert are enqueued at once; each finished batch refills the
window. A task that was lost (a worker killed, Redis wiped, a publish that failed) is noticed
either by its lease running out or, at once, by the Redis epoch: a random value kept in Redis
beside the queue, gone with it if Redis loses its data, so every batch published to the old
data set is known to be lost.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from clarion import jobqueue, redisconn
from clarion.config import Settings, get_settings
from clarion.db import session_scope, utcnow
from clarion.models import Alert, AlertStatus, BatchState, Delivery, DeliveryBatch, DeliveryStatus
from clarion.redisconn import get_redis

EPOCH_KEY = "clarion:epoch"
SEND_TASK = "tasks.delivery.send_batch"
REFILL_TASK = "tasks.delivery.refill"


def redis_epoch() -> str:
    """The identity of Redis's current data set (made on first use, lost with the data)."""
    return redisconn.stamp(EPOCH_KEY) or ""


def locked_alert(session: Session, alert_id: int) -> Alert | None:
    """The alert, row-locked on PostgreSQL (SQLite writers are serialised anyway)."""
    return session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())


def add_batches(session: Session, alert_id: int, ids: list[int], size: int) -> int:
    """Cut sorted ledger ids into pending batches of `size`; returns how many."""
    now = utcnow()
    rows = [
        {
            "alert_id": alert_id,
            "first_id": ids[i],
            "last_id": ids[min(i + size, len(ids)) - 1],
            "state": BatchState.PENDING,
            "due_at": now,
        }
        for i in range(0, len(ids), size)
    ]
    if rows:
        session.execute(insert(DeliveryBatch), rows)
    return len(rows)


def _batch(session: Session, alert_id: int, first_id: int):
    return (
        select(DeliveryBatch)
        .where(DeliveryBatch.alert_id == alert_id, DeliveryBatch.first_id == first_id)
        .limit(1)
    )


def mark_running(session: Session, alert_id: int, first_id: int, now: datetime) -> None:
    """A worker took the batch: its lease runs from now."""
    batch = session.scalar(_batch(session, alert_id, first_id))
    if batch is not None and batch.state == BatchState.ENQUEUED:
        batch.enqueued_at = now


def close(session: Session, alert_id: int, first_id: int, last_id: int) -> None:
    """After a run: done, or pending until its next row falls due."""
    batch = session.scalar(_batch(session, alert_id, first_id))
    if batch is None:
        return
    rows = dict(
        session.execute(
            select(Delivery.status, func.min(Delivery.next_attempt_at))
            .where(
                Delivery.alert_id == alert_id,
                Delivery.id.between(first_id, last_id),
                Delivery.status.in_(
                    [DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING]
                ),
            )
            .group_by(Delivery.status)
        ).all()
    )
    if DeliveryStatus.SENDING in rows or DeliveryStatus.SENDING.value in rows:
        return  # another run holds part of the range and closes it when it ends
    if not rows:
        batch.state = BatchState.DONE
        return
    now = utcnow()
    dues = [
        now if DeliveryStatus(s) == DeliveryStatus.QUEUED else (d or now) for s, d in rows.items()
    ]
    batch.state = BatchState.PENDING
    batch.due_at = min(dues)


def renew(session: Session, alert_id: int, delivery_id: int, now: datetime) -> None:
    """The run holding the batch of `delivery_id` is alive: its lease starts again from now."""
    session.execute(
        update(DeliveryBatch)
        .where(
            DeliveryBatch.alert_id == alert_id,
            DeliveryBatch.first_id <= delivery_id,
            DeliveryBatch.last_id >= delivery_id,
            DeliveryBatch.state == BatchState.ENQUEUED,
        )
        .values(enqueued_at=now)
    )


def reopen(session: Session, alert_id: int, delivery_ids: list[int]) -> None:
    """Batches holding rows put back in the queue become pending again (due now)."""
    candidates = session.scalars(
        select(DeliveryBatch).where(
            DeliveryBatch.alert_id == alert_id,
            DeliveryBatch.first_id <= max(delivery_ids),
            DeliveryBatch.last_id >= min(delivery_ids),
        )
    )
    now = utcnow()
    for batch in candidates:
        if any(batch.first_id <= i <= batch.last_id for i in delivery_ids):
            batch.state = BatchState.PENDING
            batch.due_at = now


def _forget_lost(session: Session, alert_id: int, epoch: str, settings: Settings) -> None:
    now = utcnow()
    stale = now - timedelta(seconds=settings.send_lease_seconds)
    session.execute(
        update(DeliveryBatch)
        .where(
            DeliveryBatch.alert_id == alert_id,
            DeliveryBatch.state == BatchState.ENQUEUED,
            or_(
                DeliveryBatch.epoch.is_(None),
                DeliveryBatch.epoch != epoch,
                DeliveryBatch.enqueued_at < stale,
            ),
        )
        .values(state=BatchState.PENDING, due_at=now)
    )


def _take_due(session: Session, alert_id: int, free: int, epoch: str) -> list[Any]:
    now = utcnow()
    picked = session.execute(
        select(DeliveryBatch.id, DeliveryBatch.first_id, DeliveryBatch.last_id)
        .where(
            DeliveryBatch.alert_id == alert_id,
            DeliveryBatch.state == BatchState.PENDING,
            DeliveryBatch.due_at <= now,
        )
        .order_by(DeliveryBatch.due_at, DeliveryBatch.id)
        .limit(free)
    ).all()
    if picked:
        session.execute(
            update(DeliveryBatch)
            .where(DeliveryBatch.id.in_([p.id for p in picked]))
            .values(state=BatchState.ENQUEUED, enqueued_at=now, epoch=epoch)
        )
    return picked


def refill(alert_id: int) -> int:
    """Fill the alert's window with due batches and publish them; returns how many."""
    settings = get_settings()
    epoch = redis_epoch()
    next_due = None
    with session_scope() as session:
        alert = locked_alert(session, alert_id)
        if alert is None or alert.status != AlertStatus.SENDING:
            return 0
        _forget_lost(session, alert_id, epoch, settings)
        outstanding = session.scalar(
            select(func.count()).where(
                DeliveryBatch.alert_id == alert_id, DeliveryBatch.state == BatchState.ENQUEUED
            )
        )
        free = settings.send_window - (outstanding or 0)
        picked = _take_due(session, alert_id, free, epoch) if free > 0 else []
        if free > len(picked):
            next_due = session.scalar(
                select(func.min(DeliveryBatch.due_at)).where(
                    and_(
                        DeliveryBatch.alert_id == alert_id,
                        DeliveryBatch.state == BatchState.PENDING,
                    )
                )
            )
    # Published after the commit: a worker must find the batch marked as enqueued.
    for batch in picked:
        jobqueue.enqueue(SEND_TASK, alert_id, batch.first_id, batch.last_id)
    if next_due is not None:
        wake_at(alert_id, next_due)
    return len(picked)


def wake_at(alert_id: int, due: datetime) -> None:
    """Make sure a refill runs when the next deferred batch falls due (one wake-up each)."""
    client = get_redis()
    key = f"clarion:wake:{alert_id}"
    planned = client.get(key)
    when = due.timestamp()
    # A wake-up still to come, no later than this one, is enough.
    if planned is not None and time.time() <= float(planned) <= when + 0.5:
        return
    delay = max(0.0, (due - utcnow()).total_seconds())
    client.set(key, str(when), ex=int(delay) + 5)
    jobqueue.enqueue(REFILL_TASK, alert_id, countdown=delay + 0.05)
