"""Readers entering series, in the transaction of what triggers it: once per trigger each.

A confirmation enters the reader into the series of the lists it turned on, a signature that
comes to count into those of its petition, both here; clicks arrive in the database in batches
(clarion.tracking.eventstream), so the tick enters the clickers of an alert set-based
(enter_clickers). Only readers subscribed to the series' list enter: a series writes to them.
The unique (series, reader, trigger key) makes entering idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, literal, select, true
from sqlalchemy.orm import Session

from clarion.db import insert_for, utcnow
from clarion.models import (
    Click,
    EntryState,
    Series,
    SeriesEntry,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.models import SeriesTrigger as Trigger

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


def _enter(session: Session, subscriber_id: int, found: Iterable[Series]) -> int:
    now = utcnow()
    entered = 0
    for series in found:
        if not session.scalar(select(subscribed_to(series.list_id, literal(subscriber_id)))):
            continue
        row = session.execute(
            insert_for(session)(SeriesEntry.__table__)
            .values(
                series_id=series.id,
                subscriber_id=subscriber_id,
                trigger_key=trigger_key(series),
                entered_at=now,
                next_step=0,
                step_since=now,
                state=EntryState.ACTIVE.value,
                tick=0,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        entered += row.rowcount or 0
    return entered


def enter_joined(session: Session, subscriber_id: int, list_ids: Iterable[int]) -> int:
    """Enter a reader who has just confirmed these lists into their series; how many."""
    list_ids = list(list_ids)
    if not list_ids:
        return 0
    found = session.scalars(
        select(Series)
        .where(Series.trigger == Trigger.JOINED, Series.list_id.in_(list_ids))
        .order_by(Series.id)
    )
    return _enter(session, subscriber_id, list(found))


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
