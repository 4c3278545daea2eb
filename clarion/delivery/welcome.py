"""Welcome mails: a list's chosen alert, sent once to each reader whose subscription is confirmed.

A welcome alert is frozen when an editor chooses it for a list (lists.set_welcome) and then
stays `sending`, its dispatch complete from the start: it has no audience to page through.
Each confirmation adds the reader's ledger row and a one-row batch in the confirming
transaction, so a worker can only see it once the confirmation has committed, and nothing is
queued if it rolls back. The ledger is unique per (alert, reader): nobody gets the same welcome
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
from clarion.models import (
    Alert,
    AlertRole,
    AlertStatus,
    DeliveryStatus,
    MailingList,
    SeriesStep,
)
from clarion.tracking import linkmap

log = logging.getLogger(__name__)
ACTIVE = (AlertStatus.SENDING, AlertStatus.PAUSED)  # paused: rows wait until it is resumed


def in_use(session: Session, alert_id: int) -> bool:
    """True while a list names this alert as its welcome mail, or a series step sends it."""
    found = select(MailingList.id).where(MailingList.welcome_alert_id == alert_id).limit(1)
    step = select(SeriesStep.id).where(SeriesStep.alert_id == alert_id).limit(1)
    return session.scalar(found) is not None or session.scalar(step) is not None


def queue(session: Session, subscriber_id: int, list_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Ledger rows for the welcome mails of the lists a reader just confirmed.

    Returns the new (alert id, delivery id) pairs: hand them out (`hand_out`) after the commit.
    """
    list_ids = list(list_ids)
    if not list_ids:
        return []
    welcome_ids = select(MailingList.welcome_alert_id).where(MailingList.id.in_(list_ids))
    alert_ids = session.scalars(
        select(Alert.id)
        .where(
            Alert.id.in_(welcome_ids),
            Alert.role == AlertRole.WELCOME.value,
            Alert.status.in_(ACTIVE),
        )
        .order_by(Alert.id)
    ).all()
    queued = []
    for alert_id in alert_ids:
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
            continue  # this reader has had this welcome already
        batches.add_batches(session, alert_id, [row[0]], 1)
        session.execute(
            update(Alert).where(Alert.id == alert_id).values(recipients=Alert.recipients + 1)
        )
        queued.append((alert_id, row[0]))
    return queued


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
