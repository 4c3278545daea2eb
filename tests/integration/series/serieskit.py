"""Helpers for series tests: a list of readers, a series with ready steps, the ledger per step."""

from __future__ import annotations

from sqlalchemy import select

from clarion.db import utcnow
from clarion.models import (
    Alert,
    AlertRole,
    AlertStatus,
    Delivery,
    Petition,
    SeriesEntry,
    Signature,
    Subscriber,
)
from clarion.series import editing, entering
from tests.helpers import refresh
from tests.sendkit import make_audience, make_list

BODY = {"body_md": "Step mail. Act now: https://blog.example.org/act"}


def world(session, count: int = 3):
    """A list with `count` readers and a petition; returns (list, reader ids, petition)."""
    ml = make_list(session, "alerts", name="Urgent alerts")
    readers = make_audience(session, ml, count)
    petition = Petition(slug="free-ales", title="Free Ales")
    session.add(petition)
    session.commit()
    return ml, readers, petition


def make_series(session, editor, ml, delays_hours, *, goal=None, trigger="joined", **more):
    """A series with one ready step per delay (conditions: `more["conditions"][i]`)."""
    conditions = more.pop("conditions", [None] * len(delays_hours))
    series = editing.create(
        session,
        editor,
        editing.SeriesValues(name="Journey", list_id=ml.id, trigger=trigger, goal=goal, **more),
    )
    for number, (hours, cond) in enumerate(zip(delays_hours, conditions, strict=True), 1):
        step = editing.add_step(
            session, editor, series, editing.StepValues(delay_hours=hours, conditions=cond)
        )
        alert = session.get(Alert, step.alert_id)
        alert.subject, alert.fields = f"Step {number}", dict(BODY)
    session.flush()
    editing.resume(session, editor, series)
    session.commit()
    return series


def step_alerts(session, series) -> list[int]:
    """The alert ids of the series' steps, in order."""
    return [s.alert_id for s in editing.steps_of(session, series.id)]


def ledger(session, series) -> list[set[int]]:
    """For each step, the readers with a ledger row of its alert."""
    refresh(session)
    return [
        set(session.scalars(select(Delivery.subscriber_id).where(Delivery.alert_id == alert_id)))
        for alert_id in step_alerts(session, series)
    ]


def enter(session, series, readers) -> None:
    """Readers enter as a confirmation would make them."""
    for reader in readers:
        entering.enter_joined(session, reader, [series.list_id])
    session.commit()


def enter_for_the_tick(session, editor, series, readers) -> None:
    """Readers enter while the series is paused, so that the tick sends even a first step
    without delay (a confirmation would queue it at once); then the series is resumed."""
    editing.pause(session, editor, series)
    enter(session, series, readers)
    editing.resume(session, editor, series)
    session.commit()


def states(session, series) -> dict[int, str]:
    """Each reader's state in the series."""
    refresh(session)
    rows = session.execute(
        select(SeriesEntry.subscriber_id, SeriesEntry.state).where(
            SeriesEntry.series_id == series.id
        )
    )
    return {reader: state.value for reader, state in rows}


def sign(session, petition, reader_id) -> None:
    """A confirmed signature of the reader (by address)."""
    email = session.get(Subscriber, reader_id).email
    session.add(Signature(petition_id=petition.id, email=email, name="N", confirmed_at=utcnow()))
    session.commit()


def is_step(alert: Alert) -> bool:
    """A frozen series step alert."""
    return alert.role == AlertRole.SERIES_STEP.value and alert.status == AlertStatus.SENDING
