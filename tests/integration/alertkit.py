"""Frozen alerts with deliveries, made directly in the database as dispatch would leave them."""

from __future__ import annotations

from datetime import timedelta

from clarion.db import utcnow
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Delivery,
    DeliveryStatus,
    Petition,
    Subscriber,
)
from clarion.tokens import CLICK, delivery_tokens
from clarion.tracking import linkmap


def make_petition(session, slug: str = "free-them", **fields) -> Petition:
    """An open petition."""
    values = {"title": "Free them all", "body_md": "They must be **freed**.", "goal": 100}
    petition = Petition(slug=slug, **{**values, **fields})
    session.add(petition)
    session.commit()
    return petition


def make_readers(session, count: int, prefix: str = "reader") -> list[Subscriber]:
    """Subscribers named Reader N with addresses readerN@example.org."""
    readers = [
        Subscriber(email=f"{prefix}{i}@example.org", name=f"Reader {i}") for i in range(count)
    ]
    session.add_all(readers)
    session.commit()
    return readers


def frozen_alert(
    session,
    links: list[str],
    readers: list[Subscriber],
    *,
    sent_ago: timedelta = timedelta(hours=1),
    prime: bool = True,
) -> tuple[Alert, list[Delivery]]:
    """A sent alert with these frozen links and one sent delivery per reader."""
    now = utcnow()
    alert = Alert(
        kind=AlertKind.PETITION,
        name="Sign for them",
        subject="Sign for them",
        status=AlertStatus.SENT,
        frozen_subject="Sign for them",
        frozen_html="<p>x</p>",
        frozen_text="x",
        frozen_links=links,
        frozen_at=now - sent_ago,
        started_at=now - sent_ago,
    )
    session.add(alert)
    session.flush()
    deliveries = [
        Delivery(
            alert_id=alert.id,
            subscriber_id=r.id,
            status=DeliveryStatus.SENT,
            sent_at=now - sent_ago,
        )
        for r in readers
    ]
    session.add_all(deliveries)
    session.commit()
    if prime:
        linkmap.prime_alert(session, alert.id)
    return alert, deliveries


def token_of(delivery: Delivery) -> str:
    """The click token that the mail's links carry."""
    return delivery_tokens(CLICK).encode(delivery.id)
