"""A series' figures: readers per state, and per step what was sent, clicked and signed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from clarion.models import (
    Alert,
    Click,
    Delivery,
    DeliveryStatus,
    EntryState,
    SeriesEntry,
    SeriesStep,
    Signature,
)


@dataclass(frozen=True)
class StepStats:
    """One step's alert and what came of it."""

    step: SeriesStep
    alert: Alert
    sent: int
    clickers: int  # readers who clicked a link (scanners left out)
    signatures: int  # confirmed signatures that came from this mail


def entry_counts(session: Session, series_id: int) -> dict[str, int]:
    """How many readers are in each state (active, finished, left, goal)."""
    rows = session.execute(
        select(SeriesEntry.state, func.count())
        .where(SeriesEntry.series_id == series_id)
        .group_by(SeriesEntry.state)
    )
    counts = {state.value: 0 for state in EntryState}
    counts.update({EntryState(state).value: n for state, n in rows})
    return counts


def step_stats(session: Session, steps: list[SeriesStep]) -> list[StepStats]:
    """Each step with its figures (three grouped counts, whatever the number of steps)."""
    ids = [s.alert_id for s in steps]
    sent = dict(
        session.execute(
            select(Delivery.alert_id, func.count())
            .where(Delivery.alert_id.in_(ids), Delivery.status == DeliveryStatus.SENT)
            .group_by(Delivery.alert_id)
        ).all()
    )
    clicks = dict(
        session.execute(
            select(Click.alert_id, func.count(distinct(Click.subscriber_id)))
            .where(Click.alert_id.in_(ids), Click.suspected_scanner.is_(False))
            .group_by(Click.alert_id)
        ).all()
    )
    signed = dict(
        session.execute(
            select(Signature.alert_id, func.count())
            .where(Signature.alert_id.in_(ids), Signature.confirmed_at.is_not(None))
            .group_by(Signature.alert_id)
        ).all()
    )
    alerts = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_(ids)))}
    return [
        StepStats(
            s,
            alerts[s.alert_id],
            sent.get(s.alert_id, 0),
            clicks.get(s.alert_id, 0),
            signed.get(s.alert_id, 0),
        )
        for s in steps
    ]
