"""The beat's tick: move every reader whose step fell due into that step's ledger, set-based.

Per active series, in one transaction on its row (locked FOR NO KEY UPDATE on PostgreSQL, so
confirmations can still enter readers; under the write lock in SQLite):
1. readers who clicked the trigger alert since the last tick enter (entering.enter_clickers);
2. readers who meet the goal leave with state `goal`; those no longer subscribed to the list,
   or suppressed, with state `left`;
3. for each step in order whose alert is ready: one conditional UPDATE moves the entries
   waiting for it, due by now, to the next step and marks them with this tick's number; one
   INSERT … SELECT writes the ledger rows of those marked who meet the step's condition (the
   others skip the step).
The UPDATE only takes entries still waiting for that step, and the ledger is unique per
(alert, reader): a second beat, a restart or two ticks at once send each step once. Batches are
handed out after the commit (hand_out); if that is lost, the delivery sweep sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import exists, literal, or_, select, true, update
from sqlalchemy.orm import Session

from clarion import jobqueue
from clarion.alerts import segments
from clarion.config import get_settings
from clarion.db import insert_for, session_scope, utcnow
from clarion.delivery import batches
from clarion.delivery.ledger import table
from clarion.delivery.welcome import ACTIVE as READY
from clarion.models import (
    Alert,
    DeliveryStatus,
    EntryState,
    Series,
    SeriesEntry,
    SeriesStatus,
    SeriesStep,
    SeriesTrigger,
    Subscriber,
    Suppression,
)
from clarion.series import entering
from clarion.tracking import linkmap

log = logging.getLogger(__name__)
Queued = tuple[int, list[int]]  # an alert and the ledger rows written for it


def tick(now: datetime | None = None) -> list[Queued]:
    """Periodic: move the due readers of every active series; returns what was queued."""
    now = now or utcnow()
    with session_scope() as session:
        ids = session.scalars(
            select(Series.id).where(Series.status == SeriesStatus.ACTIVE).order_by(Series.id)
        ).all()
    queued: list[Queued] = []
    for series_id in ids:
        with session_scope() as session:
            done = tick_series(session, series_id, now)
        hand_out(done)
        queued += done
    return queued


def locked(session: Session, series_id: int) -> Series | None:
    """The series, its row locked against other ticks but not against readers entering."""
    return session.scalar(
        select(Series).where(Series.id == series_id).with_for_update(key_share=True)
    )


def tick_series(session: Session, series_id: int, now: datetime) -> list[Queued]:
    """One series' tick, in the caller's transaction (see the module's docstring)."""
    series = locked(session, series_id)
    if series is None or series.status != SeriesStatus.ACTIVE:
        return []  # paused meanwhile: its readers wait
    series.ticks = (series.ticks or 0) + 1
    mark = series.ticks
    if series.trigger == SeriesTrigger.CLICKED and series.alert_id is not None:
        entering.enter_clickers(session, series, now)
    session.flush()
    _reach_goal(session, series)
    _leave(session, series)
    steps = session.scalars(
        select(SeriesStep).where(SeriesStep.series_id == series.id).order_by(SeriesStep.position)
    ).all()
    _finish_beyond(session, series.id, len(steps))
    queued = []
    for index, step in enumerate(steps):
        alert = session.get(Alert, step.alert_id)
        if alert is None or alert.status not in READY:
            continue  # a step not ready yet: its readers wait for it
        last = index == len(steps) - 1
        if _move(session, series.id, index, step.delay_seconds, now, mark, last) == 0:
            continue
        ids = _write_ledger(session, series.id, index + 1, step, mark, now)
        if ids:
            batches.add_batches(session, alert.id, ids, get_settings().batch_size)
            session.execute(
                update(Alert)
                .where(Alert.id == alert.id)
                .values(recipients=Alert.recipients + len(ids))
            )
            queued.append((alert.id, ids))
    return queued


def _active(series_id: int) -> list:
    return [SeriesEntry.series_id == series_id, SeriesEntry.state == EntryState.ACTIVE]


def _reach_goal(session: Session, series: Series) -> None:
    if not series.goal:
        return
    met = exists().where(
        Subscriber.id == SeriesEntry.subscriber_id, segments.condition(session, series.goal)
    )
    session.execute(
        update(SeriesEntry)
        .where(*_active(series.id), met)
        .values(state=EntryState.GOAL)
        .execution_options(synchronize_session=False)
    )


def _leave(session: Session, series: Series) -> None:
    suppressed = exists().where(
        Subscriber.id == SeriesEntry.subscriber_id, Suppression.email == Subscriber.email
    )
    gone = ~entering.subscribed_to(series.list_id, SeriesEntry.subscriber_id)
    session.execute(
        update(SeriesEntry)
        .where(*_active(series.id), or_(gone, suppressed))
        .values(state=EntryState.LEFT)
        .execution_options(synchronize_session=False)
    )


def _finish_beyond(session: Session, series_id: int, count: int) -> None:
    # Readers past the last step (steps were removed): nothing is left for them.
    session.execute(
        update(SeriesEntry)
        .where(*_active(series_id), SeriesEntry.next_step >= count)
        .values(state=EntryState.FINISHED)
        .execution_options(synchronize_session=False)
    )


def _move(
    session: Session, series_id: int, index: int, delay: int, now: datetime, mark: int, last: bool
) -> int:
    """The claim: entries waiting for step `index` since before its delay, on to the next."""
    result = session.execute(
        update(SeriesEntry)
        .where(
            *_active(series_id),
            SeriesEntry.next_step == index,
            SeriesEntry.step_since <= now - timedelta(seconds=delay),
        )
        .values(
            next_step=index + 1,
            step_since=now,
            tick=mark,
            state=EntryState.FINISHED if last else EntryState.ACTIVE,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _write_ledger(
    session: Session, series_id: int, moved_to: int, step: SeriesStep, mark: int, now: datetime
) -> list[int]:
    """Ledger rows of the step's alert for the entries this tick moved past it."""
    rows = (
        select(
            literal(step.alert_id),
            SeriesEntry.subscriber_id,
            literal(DeliveryStatus.QUEUED.value),
            literal(0),
            literal(""),
            literal(now, table.c.updated_at.type),
        )
        .join(Subscriber, Subscriber.id == SeriesEntry.subscriber_id)
        .where(
            SeriesEntry.series_id == series_id,
            SeriesEntry.tick == mark,
            SeriesEntry.next_step == moved_to,
            segments.condition(session, step.conditions) if step.conditions else true(),
        )
    )
    stmt = (
        insert_for(session)(table)
        .from_select(
            ["alert_id", "subscriber_id", "status", "attempts", "last_reply", "updated_at"], rows
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    return sorted(r[0] for r in session.execute(stmt))


def hand_out(queued: Iterable[Queued]) -> None:
    """After the commit: make the links known to the click path and have the batches sent.

    If this is lost, the delivery sweep hands the batches out within CLARION_SWEEP_SECONDS,
    and a click finds its link in the database instead.
    """
    for alert_id, ids in queued:
        try:
            linkmap.links_of(alert_id)  # loads the frozen links into Redis if they are not there
            linkmap.remember_deliveries(alert_id, ids)
            jobqueue.enqueue(batches.REFILL_TASK, alert_id)
        except Exception as exc:  # Redis or the broker is away: the sweep sends them
            log.warning("series step of alert %s waits for the sweep: %s", alert_id, exc)
