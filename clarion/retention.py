"""Data minimisation: what Clarion deletes once it has no reason to keep it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from clarion.db import utcnow
from clarion.models import (
    Bounce,
    ConsentRecord,
    InboundMessage,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

PENDING_DAYS = 30
EVIDENCE_DAYS = 30


def purge_expired(session: Session) -> dict[str, int]:
    """Forget sign-ups never confirmed in PENDING_DAYS; drop bounce evidence (and the processed
    inbound messages it came from) after EVIDENCE_DAYS."""
    now = utcnow()
    cutoff = now - timedelta(days=PENDING_DAYS)
    # Someone who signed up on the web, never confirmed, and has no other standing is forgotten
    # entirely; imported pending rows are the importing editor's to manage.
    only_pending = (
        select(Subscriber.id)
        .where(Subscriber.created_at < cutoff)
        .where(
            exists().where(
                ConsentRecord.subscriber_id == Subscriber.id, ConsentRecord.action == "subscribe"
            )
        )
        .where(
            ~exists().where(
                Subscription.subscriber_id == Subscriber.id,
                Subscription.status != SubscriptionStatus.PENDING,
            )
        )
        .where(
            ~exists().where(
                ConsentRecord.subscriber_id == Subscriber.id,
                ConsentRecord.confirmed_at.is_not(None),
            )
        )
    )
    ids = list(session.scalars(only_pending))
    forgotten = 0
    if ids:
        forgotten = session.execute(delete(Subscriber).where(Subscriber.id.in_(ids))).rowcount
    evidence = session.execute(
        update(Bounce)
        .where(
            Bounce.received_at < now - timedelta(days=EVIDENCE_DAYS), Bounce.evidence.is_not(None)
        )
        .values(evidence=None)
    ).rowcount
    inbound = session.execute(
        delete(InboundMessage).where(
            InboundMessage.received_at < now - timedelta(days=EVIDENCE_DAYS),
            InboundMessage.processed_at.is_not(None),
        )
    ).rowcount
    return {
        "forgotten_subscribers": forgotten,
        "evidence_purged": evidence,
        "inbound_purged": inbound,
    }
