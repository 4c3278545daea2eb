"""Inbound messages processed end to end on a real database: finding the reader (VERP token,
our headers in the returned original, the address), the mailto: unsubscribe, processing once,
failures kept for the sweep."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from clarion import jobqueue
from clarion.bounces import inbound
from clarion.db import session_scope, utcnow
from clarion.models import Bounce, BounceClass, ConsentRecord, InboundMessage, Suppression
from tests.bouncekit import BOUNCE_DOMAIN, dsn, reader_on, sent_to
from tests.helpers import refresh, subscription_states
from tests.integration.alertkit import token_of


def stored(raw: bytes, source: str = "smtp", envelope: tuple[str, ...] = ()) -> int:
    with session_scope() as s:
        return inbound.store(s, source, raw, envelope).id


def bounce_rows(session) -> list[Bounce]:
    refresh(session)
    return list(session.scalars(select(Bounce).order_by(Bounce.id)))


@pytest.fixture
def sent(session, lists):
    reader = reader_on(session, [lists["alerts"], lists["news"]])
    return sent_to(session, reader, [lists["alerts"]])


def test_the_verp_token_names_the_delivery_whatever_address_the_report_names(session, sent):
    # Forwarded to another mailbox that no longer exists: the report names that address.
    raw = dsn(
        sent,
        "old-box@elsewhere.example",
        "5.1.1",
        "550 5.1.1 <old-box@elsewhere.example>:"
        " Recipient address rejected: User unknown in local recipient table",
        with_headers=False,
    )
    outcome = inbound.process(stored(raw, envelope=(sent.verp,)))
    assert outcome == "hard reader@example.org: suppressed"
    [bounce] = bounce_rows(session)
    assert (bounce.delivery_id, bounce.alert_id, bounce.source) == (
        sent.delivery.id,
        sent.alert.id,
        "smtp",
    )
    assert bounce.evidence == raw and "5.1.1" in bounce.reason


@pytest.mark.parametrize("header", ["List-Unsubscribe", "Message-ID", "none"])
def test_a_mailed_report_not_returned_to_a_verp_token_acts_on_nothing(session, sent, header):
    # Our headers in a quoted original, or the address alone, are known to anyone who saw a
    # mail (a forwarded copy): a report that did not come back to the envelope proves nothing.
    raw = dsn(
        sent, "reader@example.org", "5.1.1", "550 5.1.1 User unknown", to="bounces@clarion.test"
    )
    if header != "List-Unsubscribe":
        raw = raw.replace(b"List-Unsubscribe:", b"X-Was-List-Unsubscribe:")
    if header == "none":
        raw = raw.replace(b"Message-ID:", b"X-Was-Message-ID:")
    outcome = inbound.process(stored(raw, source="imap"))
    assert outcome.startswith("nothing to record") and bounce_rows(session) == []
    assert session.scalars(select(Suppression)).all() == []


def test_a_forged_bounce_to_a_click_token_or_a_made_up_one_suppresses_no_one(session, sent):
    """Probe finding #1: a mail to b+<token from a tracked link>@ suppressed the reader."""
    click = token_of(sent.delivery)
    for token in (click, "a" * 26, sent.mailto_token):
        verp = f"b+{token}@{BOUNCE_DOMAIN}"
        raw = dsn(sent, "reader@example.org", "5.1.1", "550 5.1.1 User unknown", to=verp)
        outcome = inbound.process(stored(raw, envelope=(verp,)))
        assert outcome.startswith("nothing to record"), token
    assert bounce_rows(session) == [] and session.scalars(select(Suppression)).all() == []
    assert subscription_states(session, "reader@example.org")["alerts"] == "subscribed"


def test_a_report_about_nobody_of_ours_records_nothing(session, sent):
    raw = dsn(None, "stranger@example.net", "5.1.1", "550 5.1.1 unknown")
    outcome = inbound.process(stored(raw, source="imap"))
    assert outcome.startswith("nothing to record") and bounce_rows(session) == []


def _redacted_complaint(sent) -> bytes:
    """An ARF complaint whose feedback loop removed every address of the reader."""
    return (
        "From: fbl@isp.example\r\n"
        f"To: {sent.verp}\r\n"
        "Subject: Abuse report\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
        "--B\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: SomeFBL/1.0\r\nVersion: 1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: Alerts <alerts@clarion.test>\r\nTo: <Undisclosed Recipients>\r\n"
        "Subject: Day 1000\r\n\r\n--B--\r\n"
    ).encode()


def test_a_redacted_complaint_returned_to_a_verp_token_reaches_that_reader(session, sent):
    raw = _redacted_complaint(sent)
    outcome = inbound.process(stored(raw, envelope=(sent.verp,)))
    assert outcome == "complaint reader@example.org: unsubscribed, suppressed"
    assert subscription_states(session, "reader@example.org")["news"] == "unsubscribed"
    assert [b.delivery_id for b in bounce_rows(session)] == [sent.delivery.id]


def test_a_redacted_complaint_not_returned_to_us_acts_on_nothing(session, sent):
    raw = _redacted_complaint(sent).replace(sent.verp.encode(), b"abuse@clarion.test")
    outcome = inbound.process(stored(raw, source="imap"))
    assert outcome.startswith("nothing to record") and bounce_rows(session) == []


def test_a_message_is_processed_once_however_often_it_is_asked(session, sent):
    inbound_id = stored(
        dsn(sent, "reader@example.org", "4.2.2", "452 4.2.2 Over quota", action="delayed"),
        envelope=(sent.verp,),
    )
    first = inbound.process(inbound_id)
    assert inbound.process(inbound_id) == first == "delay reader@example.org: ignored"
    assert len(bounce_rows(session)) == 1
    message = session.get(InboundMessage, inbound_id)
    assert message.processed_at is not None and message.attempts == 1


def test_a_failure_is_recorded_and_the_sweep_offers_the_message_again(session, sent, monkeypatch):
    inbound_id = stored(
        dsn(sent, "reader@example.org", "5.1.1", "550 5.1.1 unknown"), envelope=(sent.verp,)
    )
    monkeypatch.setattr(inbound, "handle", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        inbound.process(inbound_id)
    refresh(session)
    message = session.get(InboundMessage, inbound_id)
    assert (message.processed_at, message.attempts) == (None, 1)
    assert "ZeroDivisionError" in message.error and bounce_rows(session) == []
    monkeypatch.undo()
    queued = []
    previous = jobqueue.set_backend(lambda name, args, countdown: queued.append((name, args)))
    try:
        assert inbound.sweep() == []  # too fresh: its own task may still be on its way
        with session_scope() as s:
            s.execute(update(InboundMessage).values(received_at=utcnow() - timedelta(minutes=5)))
        assert inbound.sweep() == [inbound_id]
    finally:
        jobqueue.set_backend(previous)
    assert queued == [("tasks.bounces.process_inbound", (inbound_id,))]
    inbound.process(inbound_id)
    assert [b.classification for b in bounce_rows(session)] == [BounceClass.HARD]


def _reply(sent, subject: str = "unsubscribe", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Reader <reader@example.org>"
    message["To"] = sent.unsubscribe_address
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Please take me off.")
    return message.as_bytes()


def test_a_mail_to_the_unsubscribe_address_leaves_that_alerts_lists(session, sent):
    outcome = inbound.process(stored(_reply(sent), envelope=(sent.unsubscribe_address,)))
    assert outcome == "reader@example.org left 1 list(s)"
    # The alert went to "alerts" only; "news" is another list the reader keeps.
    assert subscription_states(session, "reader@example.org") == {
        "alerts": "unsubscribed",
        "news": "subscribed",
    }
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.source == "mailto"))
    assert (record.action, record.alert_id) == ("unsubscribe", sent.alert.id)
    assert bounce_rows(session) == []


def test_a_mail_to_unsubscribe_with_a_click_or_verp_token_unsubscribes_no_one(session, sent):
    """Probe finding #1: unsubscribe+<token from a tracked link>@ took the reader off."""
    for token in (token_of(sent.delivery), sent.token):
        address = f"unsubscribe+{token}@{BOUNCE_DOMAIN}"
        outcome = inbound.process(stored(_reply(sent), envelope=(address,)))
        assert outcome.startswith("nothing to do"), token
    assert subscription_states(session, "reader@example.org")["alerts"] == "subscribed"


def test_a_mailbox_copy_of_an_unsubscribe_mail_is_read_by_its_delivery_headers(session, sent):
    raw = _reply(sent, Delivered_To=sent.unsubscribe_address)
    inbound.process(stored(raw, source="imap"))
    assert subscription_states(session, "reader@example.org")["alerts"] == "unsubscribed"


def test_an_automatic_reply_to_the_unsubscribe_address_unsubscribes_nobody(session, sent):
    raw = _reply(sent, subject="Out of office: unsubscribe", Auto_Submitted="auto-replied")
    outcome = inbound.process(stored(raw, envelope=(sent.unsubscribe_address,)))
    assert outcome.startswith("ignored: an automatic message (autoreply)")
    assert subscription_states(session, "reader@example.org")["alerts"] == "subscribed"


def test_a_forged_unsubscribe_token_unsubscribes_nobody(session, sent):
    forged = f"unsubscribe+{'a' * 26}@{BOUNCE_DOMAIN}"
    outcome = inbound.process(stored(_reply(sent), envelope=(forged,)))
    assert outcome.startswith("nothing to do")
    assert subscription_states(session, "reader@example.org")["alerts"] == "subscribed"
