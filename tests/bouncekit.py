"""Helpers for bounce tests: a sent alert with ledger rows, and bounce messages about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from clarion.db import utcnow
from clarion.models import (
    Alert,
    AlertStatus,
    Delivery,
    DeliveryStatus,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.tokens import MAILTO, VERP, delivery_tokens
from tests.sendkit import make_alert

BOUNCE_DOMAIN = "bounces.clarion.test"


@dataclass
class Sent:
    """A reader with a delivery of an alert: what a bounce about them refers to."""

    reader: Subscriber
    alert: Alert
    delivery: Delivery

    @property
    def token(self) -> str:
        """The VERP token of the delivery's envelope sender."""
        return delivery_tokens(VERP).encode(self.delivery.id)

    @property
    def mailto_token(self) -> str:
        """The token of the delivery's List-Unsubscribe mailto: address."""
        return delivery_tokens(MAILTO).encode(self.delivery.id)

    @property
    def verp(self) -> str:
        return f"b+{self.token}@{BOUNCE_DOMAIN}"

    @property
    def unsubscribe_address(self) -> str:
        return f"unsubscribe+{self.mailto_token}@{BOUNCE_DOMAIN}"


def reader_on(session, lists: list[MailingList], email: str = "reader@example.org") -> Subscriber:
    """A reader subscribed on the lists (found again if already there)."""
    reader = session.scalar(select(Subscriber).where(Subscriber.email == email))
    if reader is None:
        reader = Subscriber(email=email, name="Reader")
        session.add(reader)
        session.flush()
    for ml in lists:
        session.add(
            Subscription(
                subscriber_id=reader.id, list_id=ml.id, status=SubscriptionStatus.SUBSCRIBED
            )
        )
    session.commit()
    return reader


def sent_to(
    session,
    reader: Subscriber,
    lists: list[MailingList],
    alert: Alert | None = None,
    sent_at: datetime | None = None,
    status: AlertStatus = AlertStatus.SENT,
) -> Sent:
    """A delivery of an alert (a new one unless given) to the reader, sent at `sent_at`."""
    if alert is None:
        alert = make_alert(session, lists, status=status, name=f"Alert for {reader.email}")
    sent_at = sent_at or utcnow()
    delivery = Delivery(
        alert_id=alert.id,
        subscriber_id=reader.id,
        status=DeliveryStatus.SENT,
        sent_at=sent_at,
        message_id=f"<m{alert.id}.{reader.id}@clarion.test>",
    )
    session.add(delivery)
    session.commit()
    return Sent(reader, alert, delivery)


def dsn(
    sent: Sent | None,
    recipient: str,
    status: str,
    diagnostic: str,
    *,
    to: str | None = None,
    action: str = "failed",
    with_headers: bool = True,
) -> bytes:
    """A Postfix-style delivery status notification about one recipient, returning the
    original's headers (our Message-ID and List-Unsubscribe when `with_headers`)."""
    envelope_to = to or (sent.verp if sent else f"someone@{BOUNCE_DOMAIN}")
    original = ["From: Alerts <alerts@clarion.test>", f"To: {recipient}", "Subject: Day 1000"]
    if sent is not None and with_headers:
        original += [
            f"Message-ID: {sent.delivery.message_id}",
            f"List-Unsubscribe: <https://clarion.test/u/x>, <mailto:{sent.unsubscribe_address}>",
        ]
    headers = "\r\n".join(original)
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: {envelope_to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.example.org.\r\n\r\n"
        f"<{recipient}>: host mx.example.org said: {diagnostic}\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--B--\r\n"
    ).encode()
