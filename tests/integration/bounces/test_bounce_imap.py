"""Polling a bounce mailbox on a real IMAP server (a private Dovecot on loopback): messages are
stored and processed, and only then moved or deleted; one whose processing fails stays."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from clarion.bounces import imap, inbound
from clarion.config.bounces import parse_imap_url
from clarion.models import Bounce, InboundMessage, Suppression
from tests.bouncekit import dsn, reader_on, sent_to
from tests.helpers import refresh, subscription_states
from tests.mailservers import DovecotServer


@pytest.fixture(scope="module")
def dovecot():
    server = DovecotServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def mailbox(dovecot, request):
    """A fresh IMAP account per test, and a client to look into it."""
    user = f"bounces-{request.node.name.replace('[', '-').replace(']', '')}"[:60]
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False, timeout=10)
    client.login(user, dovecot.password)
    yield user, client
    client.logout()


def folder_count(client: IMAPClient, folder: str) -> int:
    if not client.folder_exists(folder):
        return 0
    return client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]


@pytest.fixture
def sent(session, lists):
    reader = reader_on(session, [lists["alerts"]])
    return sent_to(session, reader, [lists["alerts"]])


def test_bounces_are_processed_then_moved(dovecot, mailbox, session, sent):
    user, client = mailbox
    hard = dsn(sent, "reader@example.org", "5.1.1", "550 5.1.1 <reader@example.org>: unknown")
    # Mailbox copies keep the VERP address only in their delivery headers.
    client.append("INBOX", b"Delivered-To: " + sent.verp.encode() + b"\r\n" + hard)
    client.append("INBOX", b"From: someone@example.net\r\nSubject: hello\r\n\r\nnot a bounce\r\n")
    config = parse_imap_url(dovecot.url(user, "processed=Processed"))
    result = imap.poll(config)
    assert (len(result.processed), result.failed) == (2, [])
    assert folder_count(client, "INBOX") == 0 and folder_count(client, "Processed") == 2
    refresh(session)
    assert [s.email for s in session.scalars(select(Suppression))] == ["reader@example.org"]
    bounce = session.scalar(select(Bounce))
    assert (bounce.source, bounce.delivery_id) == ("imap", sent.delivery.id)


def test_processed_messages_are_deleted_when_no_folder_is_named(dovecot, mailbox, session, sent):
    user, client = mailbox
    client.append(
        "INBOX", dsn(sent, "reader@example.org", "4.4.7", "Delivery time expired", action="delayed")
    )
    imap.poll(parse_imap_url(dovecot.url(user)))
    client.select_folder("INBOX")
    assert client.search(["ALL"]) == []
    refresh(session)
    assert session.scalar(select(Bounce.action)) == "ignored"


def test_a_message_that_fails_stays_until_it_can_be_processed_and_is_stored_once(
    dovecot, mailbox, session, sent, monkeypatch
):
    user, client = mailbox
    client.append("INBOX", sent_unsubscribe_mail(sent))
    config = parse_imap_url(dovecot.url(user))
    monkeypatch.setattr(inbound, "handle", lambda *a: 1 / 0)
    first = imap.poll(config)
    second = imap.poll(config)
    assert first.processed == second.processed == [] and len(first.failed) == 1
    assert folder_count(client, "INBOX") == 1
    refresh(session)
    message = session.scalar(select(InboundMessage))
    assert message.attempts == 2 and message.processed_at is None
    monkeypatch.undo()
    assert len(imap.poll(config).processed) == 1
    assert folder_count(client, "INBOX") == 0
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
    assert subscription_states(session, "reader@example.org") == {"alerts": "unsubscribed"}


def test_after_the_last_attempt_a_message_is_left_for_a_person(
    dovecot, mailbox, session, sent, monkeypatch
):
    user, client = mailbox
    client.append("INBOX", sent_unsubscribe_mail(sent))
    config = parse_imap_url(dovecot.url(user))
    monkeypatch.setattr(inbound, "handle", lambda *a: 1 / 0)
    for _ in range(inbound.MAX_ATTEMPTS):
        imap.poll(config)
    result = imap.poll(config)
    assert len(result.skipped) == 1 and folder_count(client, "INBOX") == 1


def test_a_poll_already_running_is_not_started_twice(dovecot, mailbox, settings):
    from clarion.redisconn import get_redis

    user, _ = mailbox
    config = parse_imap_url(dovecot.url(user))
    get_redis().set(f"clarion:imap-poll:{config.name}", 1, ex=60)
    assert imap.poll_once(config) is None
    get_redis().delete(f"clarion:imap-poll:{config.name}")
    assert imap.poll_once(config) is not None


def sent_unsubscribe_mail(sent) -> bytes:
    return (
        f"Delivered-To: {sent.unsubscribe_address}\r\nFrom: reader@example.org\r\n"
        f"To: {sent.unsubscribe_address}\r\nSubject: unsubscribe\r\n\r\nPlease stop.\r\n"
    ).encode()


def test_beat_polls_the_mailbox_only_when_one_is_configured(settings, dovecot):
    from dataclasses import replace

    from tasks import beat_schedule

    assert "imap-poll" not in beat_schedule(settings)
    assert beat_schedule(settings)["inbound-sweep"]["task"] == "tasks.bounces.sweep_inbound"
    bounces = replace(settings.bounces, imap=parse_imap_url(dovecot.url()), imap_interval=30.0)
    poll = beat_schedule(replace(settings, bounces=bounces))["imap-poll"]
    assert (poll["task"], poll["schedule"]) == ("tasks.bounces.poll_imap", 30.0)
