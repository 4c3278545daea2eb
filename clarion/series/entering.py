"""Readers entering series, in the transaction of what triggers it: once per trigger each.

A confirmation enters the reader into the series of the lists it turned on, a signature that
comes to count into those of its petition, both here (a first step without delay, such as a
list's welcome mail, is queued at once in the confirming transaction); clicks arrive in the
database in batches (clarion.tracking.eventstream), so the tick enters the clickers of an alert
set-based (enter_clickers). Only readers subscribed to the series' list enter: a series writes
to them. The unique (series, reader, trigger key) makes entering idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, literal, select, true
from sqlalchemy.orm import Session

from clarion.alerts import segments
from clarion.db import insert_for, utcnow
from clarion.delivery import welcome
from clarion.delivery.welcome import ACTIVE as READY
from clarion.models import (
    Alert,
    Click,
    EntryState,
    Series,
    SeriesEntry,
    SeriesStatus,
    SeriesStep,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.models import SeriesTrigger as Trigger

Queued = tuple[int, int]  # an alert and the reader's ledger row, handed out after the commit
ENTRY_COLUMNS = [
    "series_id", "subscriber_id", "trigger_key", "entered_at", "next_step", "step_since",
    "state", "tick", "updated_at",
]  # fmt: skip


def trigger_key(series: Series) -> str:
    """What a reader enters a series by: its list, petition or alert."""
    if series.trigger == Trigger.JOINED:
        return f"list:{series.list_id}"
    if series.trigger == Trigger.SIGNED:
        return f"petition:{series.petition_id}"
    return f"alert:{series.alert_id}"


def subscribed_to(list_id: int | ColumnElement, subscriber_id: ColumnElement) -> ColumnElement:
    """True when the reader is subscribed to the list (confirmed)."""
    return exists().where(
        Subscription.subscriber_id == subscriber_id,
        Subscription.list_id == list_id,
        Subscription.status == SubscriptionStatus.SUBSCRIBED,
    )


def _entry(series: Series, subscriber_id: int, now: datetime, **moved: object) -> dict:
    return {
        "series_id": series.id, "subscriber_id": subscriber_id,
        "trigger_key": trigger_key(series), "entered_at": now, "next_step": 0,
        "step_since": now, "state": EntryState.ACTIVE.value, "tick": 0, "updated_at": now,
    } | moved  # fmt: skip


def _insert(session: Session, values: dict) -> bool:
    row = session.execute(
        insert_for(session)(SeriesEntry.__table__).values(**values).on_conflict_do_nothing()
    )
    return bool(row.rowcount)


def _is_subscribed(session: Session, series: Series, subscriber_id: int) -> bool:
    return bool(session.scalar(select(subscribed_to(series.list_id, literal(subscriber_id)))))


def _enter(session: Session, subscriber_id: int, found: Iterable[Series]) -> int:
    now = utcnow()
    entered = 0
    for series in found:
        if _is_subscribed(session, series, subscriber_id):
            entered += _insert(session, _entry(series, subscriber_id, now))
    return entered


def _meets(session: Session, tree: dict | None, subscriber_id: int) -> bool:
    if not tree:
        return True
    found = exists().where(Subscriber.id == subscriber_id, segments.condition(session, tree))
    return bool(session.scalar(select(found)))


def _at_once(
    session: Session, series: Series, subscriber_id: int
) -> tuple[SeriesStep, bool] | None:
    """The series' first step if it goes at once to this reader, and whether it is the last.

    Only an active series whose first step has no delay and is ready, for a reader who has
    not met its goal already (the tick lets those leave with state `goal`).
    """
    if series.status != SeriesStatus.ACTIVE:
        return None
    steps = session.scalars(
        select(SeriesStep).where(SeriesStep.series_id == series.id).order_by(SeriesStep.position)
    ).all()
    if not steps or steps[0].delay_seconds != 0:
        return None
    ready = session.scalar(select(Alert.status).where(Alert.id == steps[0].alert_id))
    if ready not in READY or (series.goal and _meets(session, series.goal, subscriber_id)):
        return None
    return steps[0], len(steps) == 1


def enter_joined(session: Session, subscriber_id: int, list_ids: Iterable[int]) -> list[Queued]:
    """Enter a reader who has just confirmed these lists into their series.

    A series whose first step goes at once (a list's welcome mail, among others) has it
    queued here, in the confirming transaction, and the reader moved past it: returns those
    (alert id, delivery id) pairs, for clarion.delivery.welcome.hand_out after the commit.
    Other steps are the tick's.
    """
    list_ids = list(list_ids)
    if not list_ids:
        return []
    found = session.scalars(
        select(Series)
        .where(Series.trigger == Trigger.JOINED, Series.list_id.in_(list_ids))
        .order_by(Series.id)
    ).all()
    now = utcnow()
    queued: list[Queued] = []
    for series in found:
        if not _is_subscribed(session, series, subscriber_id):
            continue
        first = _at_once(session, series, subscriber_id)
        if first is None:
            _insert(session, _entry(series, subscriber_id, now))
            continue
        step, last = first
        state = EntryState.FINISHED if last else EntryState.ACTIVE
        if not _insert(session, _entry(series, subscriber_id, now, next_step=1,
                                       state=state.value)):  # fmt: skip
            continue  # in this series already: once per trigger
        if _meets(session, step.conditions, subscriber_id):
            delivery_id = welcome.queue_one(session, step.alert_id, subscriber_id)
            if delivery_id is not None:
                queued.append((step.alert_id, delivery_id))
    return queued


def enter_signed(session: Session, signature: Signature) -> int:
    """Enter the reader behind a signature that has just come to count (by reader or address)."""
    found = list(
        session.scalars(
            select(Series)
            .where(Series.trigger == Trigger.SIGNED, Series.petition_id == signature.petition_id)
            .order_by(Series.id)
        )
    )
    if not found:
        return 0
    subscriber_id = signature.subscriber_id or session.scalar(
        select(Subscriber.id).where(Subscriber.email == signature.email)
    )
    return _enter(session, subscriber_id, found) if subscriber_id else 0


def last_click_id(session: Session) -> int:
    """The newest click so far: a new series starts after it (old clicks do not trigger)."""
    return session.scalar(select(func.max(Click.id))) or 0


def enter_clickers(session: Session, series: Series, now: datetime) -> int:
    """Enter, set-based, the readers who clicked the trigger alert since the last tick."""
    newest = session.scalar(select(func.max(Click.id)).where(Click.alert_id == series.alert_id))
    if newest is None or newest <= series.seen_click_id:
        return 0
    first = func.min(Click.clicked_at)
    rows = (
        select(
            literal(series.id),
            Click.subscriber_id,
            literal(trigger_key(series)),
            first,
            literal(0),
            first,
            literal(EntryState.ACTIVE.value),
            literal(0),
            literal(now, SeriesEntry.__table__.c.updated_at.type),
        )
        .where(
            Click.alert_id == series.alert_id,
            Click.id > series.seen_click_id,
            Click.id <= newest,
            Click.subscriber_id.is_not(None),
            Click.suspected_scanner.is_(False),
            subscribed_to(series.list_id, Click.subscriber_id),
            true(),
        )
        .group_by(Click.subscriber_id)
    )
    result = session.execute(
        insert_for(session)(SeriesEntry.__table__)
        .from_select(ENTRY_COLUMNS, rows)
        .on_conflict_do_nothing()
    )
    series.seen_click_id = newest
    return result.rowcount or 0
