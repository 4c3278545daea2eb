"""Mails sent to one reader at a time as they come: a list's welcome mail, a series' step.

A welcome alert is frozen when an editor chooses it for a list (lists.set_welcome) and then
stays `sending`, its dispatch complete from the start: it has no audience to page through. It
is the one step of the list's welcome series (clarion.series.welcome): each confirmation adds
the reader's ledger row and a one-row batch in the confirming transaction (queue_one), so a
worker can only see it once the confirmation has committed, and nothing is queued if it rolls
back. The ledger is unique per (alert, reader): nobody gets the same welcome
twice, however often they confirm. At send time the engine checks, as for every alert, that the
reader is still subscribed to the list — never someone unconfirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clarion import jobqueue
from clarion.db import insert_for, utcnow
from clarion.delivery import batches
from clarion.delivery.ledger import table
from clarion.models import Alert, AlertStatus, DeliveryStatus, SeriesStep
from clarion.tracking import linkmap

log = logging.getLogger(__name__)
ACTIVE = (AlertStatus.SENDING, AlertStatus.PAUSED)  # paused: rows wait until it is resumed


def in_use(session: Session, alert_id: int) -> bool:
    """True while a series step sends this alert (a list's welcome mail is one)."""
    step = select(SeriesStep.id).where(SeriesStep.alert_id == alert_id).limit(1)
    return session.scalar(step) is not None


def queue_one(session: Session, alert_id: int, subscriber_id: int) -> int | None:
    """The reader's ledger row of a frozen alert and a one-row batch, in the caller's
    transaction; None if they have had it already. Hand it out (`hand_out`) after the commit.
    """
    row = session.execute(
        insert_for(session)(table)
        .values(
            alert_id=alert_id,
            subscriber_id=subscriber_id,
            status=DeliveryStatus.QUEUED.value,
            attempts=0,
            last_reply="",
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    ).first()
    if row is None:
        return None  # this reader has had this mail already
    batches.add_batches(session, alert_id, [row[0]], 1)
    session.execute(
        update(Alert).where(Alert.id == alert_id).values(recipients=Alert.recipients + 1)
    )
    return row[0]


def hand_out(queued: Iterable[tuple[int, int]]) -> None:
    """After the commit: make the mail's links known to the click path, and have it sent now.

    If this is lost, the delivery sweep sends it within CLARION_SWEEP_SECONDS, and a click
    finds its link in the database instead.
    """
    for alert_id, delivery_id in queued:
        try:
            linkmap.links_of(alert_id)  # loads the frozen links into Redis if they are not there
            linkmap.remember_deliveries(alert_id, [delivery_id])
            jobqueue.enqueue(batches.REFILL_TASK, alert_id)
        except Exception as exc:  # Redis or the broker is away: the confirmation has succeeded
            log.warning("welcome mail of alert %s waits for the sweep: %s", alert_id, exc)
