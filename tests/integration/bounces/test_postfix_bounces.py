"""End to end through a real Postfix: Clarion sends an alert with its delivery engine through a
private Postfix relay, which delivers to a loopback sink that refuses some readers; the delivery
status notifications Postfix writes come back to Clarion's bounce server by SMTP, and processing
them suppresses exactly the dead mailbox: not the full one (once), not the greylisting 450, not
the 5.7.1 that is about our sending."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clarion import jobqueue
from clarion.bounces import inbound
from clarion.bounces.server import start_bounce_server
from clarion.config import get_settings, reset_settings
from clarion.delivery import dispatch, sending
from clarion.models import (
    AdminNotice,
    Bounce,
    BounceClass,
    Delivery,
    InboundMessage,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh, wait_until
from tests.mailservers import PostfixServer
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list
from tests.services import free_port

REFUSALS = {
    "gone@example.org": "550 5.1.1 <gone@example.org>: Recipient address rejected: "
    "User unknown in local recipient table",
    "full@example.org": "552 5.2.2 <full@example.org>: Mailbox full",
    "later@example.org": "450 4.7.1 <later@example.org>: Recipient address rejected: "
    "Greylisted, please try again later",
    "policy@example.org": "554 5.7.1 <policy@example.org>: Relay access denied",
}


@pytest.fixture
def relay(settings, monkeypatch):
    """Sink, bounce server and Postfix between them; Clarion sends to Postfix."""
    arrived: list[int] = []
    bounce_port = free_port()
    bounce_server = start_bounce_server(settings, "127.0.0.1", bounce_port, queue=arrived.append)
    with FaultServer(Plan(refuse=REFUSALS)) as sink:
        postfix = PostfixServer(sink.port, settings.bounce_domain, bounce_port).start()
        try:
            monkeypatch.setenv("CLARION_SMTP_URL", f"smtp://127.0.0.1:{postfix.port}")
            reset_settings()
            yield sink, postfix, arrived
        finally:
            postfix.cleanup()
            bounce_server.stop()


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.mark.timeout(180)
def test_postfix_dsns_suppress_only_the_dead_mailbox(relay, session, queue):
    sink, postfix, arrived = relay
    assert get_settings().smtp_servers[0].port == postfix.port
    alerts = make_list(session)
    make_audience(session, alerts, 3, prefix="ok")
    for address in REFUSALS:
        session.add(Subscriber(email=address))
    session.flush()
    readers = list(session.scalars(select(Subscriber.id).where(Subscriber.email.in_(REFUSALS))))
    session.add_all(
        Subscription(subscriber_id=i, list_id=alerts.id, status=SubscriptionStatus.SUBSCRIBED)
        for i in readers
    )
    session.commit()
    alert = make_alert(session, [alerts])
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)
    queue.drain(timeout=60)

    # Postfix took every message (250); the sink got only the three it accepts.
    refresh(session)
    statuses = set(session.scalars(select(Delivery.status).where(Delivery.alert_id == alert.id)))
    assert {s.value for s in statuses} == {"sent"}
    assert sink.handler.wait_for(lambda h: h.accepted == 3)
    # Three non-delivery reports and one delay warning come back to the bounce server.
    assert wait_until(lambda: len(arrived) >= 4), postfix.log.read_text()[-3000:]
    for inbound_id in arrived:
        inbound.process(inbound_id)

    refresh(session)
    by_reader = {
        b.email: b for b in session.scalars(select(Bounce).where(Bounce.alert_id == alert.id))
    }
    assert {e: (b.classification, b.status_code, b.action) for e, b in by_reader.items()} == {
        "gone@example.org": (BounceClass.HARD, "5.1.1", "suppressed"),
        "full@example.org": (BounceClass.SOFT, "5.2.2", "counted 1 of 3"),
        "later@example.org": (BounceClass.DELAY, "4.7.1", "ignored"),
        "policy@example.org": (BounceClass.SENDER_FAULT, "5.7.1", "notice to owners"),
    }
    assert set(session.scalars(select(Suppression.email))) == {"gone@example.org"}
    # Found by the VERP token Postfix sent the report to: each row names its own delivery.
    rows = dict(
        session.execute(
            select(Subscriber.email, Delivery.id)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.alert_id == alert.id)
        ).all()
    )
    assert all(b.delivery_id == rows[e] for e, b in by_reader.items())
    evidence = by_reader["gone@example.org"].evidence
    assert b"Subject: Undelivered Mail Returned to Sender" in evidence
    assert b"Reporting-MTA: dns; relay.clarion.test" in evidence
    notice = session.scalar(select(AdminNotice).where(AdminNotice.alert_id == alert.id))
    assert notice is not None and "Relay access denied" in notice.detail
    sources = set(session.scalars(select(InboundMessage.source)))
    assert sources == {"smtp"}
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 4
