"""The bounce server over real SMTP on loopback: only our addresses with genuine tokens are
accepted, a message is committed before the 250, a storage failure is a 451, and what it
stores is processed by the queued task."""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import func, select

from clarion import jobqueue
from clarion.bounces import inbound
from clarion.bounces.server import start_bounce_server, store_committed
from clarion.models import Bounce, InboundMessage
from tests.bouncekit import BOUNCE_DOMAIN, dsn, reader_on, sent_to
from tests.helpers import refresh, subscription_states
from tests.integration.alertkit import token_of
from tests.services import free_port


@pytest.fixture
def sent(session, lists):
    reader = reader_on(session, [lists["alerts"]])
    return sent_to(session, reader, [lists["alerts"]])


@pytest.fixture
def server(settings):
    """The bounce server on a free loopback port; tasks it queues are collected, not run."""
    queued: list[int] = []
    controller = start_bounce_server(settings, "127.0.0.1", free_port(), queue=queued.append)
    controller.queued = queued
    yield controller
    controller.stop()


def smtp(server) -> smtplib.SMTP:
    return smtplib.SMTP(server.hostname, server.port, timeout=10)


def test_only_our_addresses_with_genuine_tokens_are_accepted(server, sent):
    forged = sent.token[:-1] + ("a" if sent.token[-1] != "a" else "b")
    with smtp(server) as client:
        client.ehlo("mx.example.org")
        client.mail("<>")
        assert client.rcpt(sent.verp)[0] == 250
        assert client.rcpt(sent.verp.upper())[0] == 250  # MTAs may change the case
        assert client.rcpt(sent.unsubscribe_address)[0] == 250
        for address in (
            f"b+{forged}@{BOUNCE_DOMAIN}",
            f"b+{sent.token}@elsewhere.example",
            f"postmaster@{BOUNCE_DOMAIN}",
            f"x+{sent.token}@{BOUNCE_DOMAIN}",
            "reader@example.org",
            # Each token serves its own address only: a click token from a mail's links, or
            # the mailto token, is no bounce address, nor the VERP token an unsubscribe one.
            f"b+{token_of(sent.delivery)}@{BOUNCE_DOMAIN}",
            f"unsubscribe+{token_of(sent.delivery)}@{BOUNCE_DOMAIN}",
            f"b+{sent.mailto_token}@{BOUNCE_DOMAIN}",
            f"unsubscribe+{sent.token}@{BOUNCE_DOMAIN}",
        ):
            code, text = client.rcpt(address)
            assert (code, text[:5]) == (550, b"5.1.1"), address


def test_a_bounce_is_committed_before_250_then_processed_by_its_task(server, session, sent):
    raw = dsn(sent, "reader@example.org", "5.1.1", "550 5.1.1 <reader@example.org>: unknown")
    with smtp(server) as client:
        client.sendmail("", [sent.verp], raw)
        # The 250 came back: the message is already visible to any other connection.
        refresh(session)
        [message] = session.scalars(select(InboundMessage))
    assert message.envelope_to == sent.verp and message.raw == raw
    assert server.queued == [message.id]
    inbound.process(message.id)
    refresh(session)
    assert session.scalar(select(Bounce.action)) == "suppressed"


def test_the_unsubscribe_address_takes_the_reader_off_the_alerts_lists(server, session, sent):
    with smtp(server) as client:
        client.sendmail(
            "reader@example.org",
            [sent.unsubscribe_address],
            b"From: reader@example.org\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n",
        )
    [inbound_id] = server.queued
    inbound.process(inbound_id)
    assert subscription_states(session, "reader@example.org") == {"alerts": "unsubscribed"}


def test_a_storage_failure_is_a_temporary_refusal_and_stores_nothing(settings, session, sent):
    def broken(raw: bytes, rcpts: list[str]) -> int:
        raise OSError("disk full")

    controller = start_bounce_server(settings, "127.0.0.1", free_port(), store=broken)
    try:
        with smtp(controller) as client:
            client.ehlo("mx.example.org")
            client.mail("<>")
            client.rcpt(sent.verp)
            code, text = client.data(b"Subject: x\r\n\r\nx\r\n")
    finally:
        controller.stop()
    assert (code, text[:5]) == (451, b"4.3.0")
    refresh(session)
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_a_queueing_failure_still_answers_250_and_the_sweep_has_the_message(
    settings, session, sent
):
    def no_queue(inbound_id: int) -> None:
        raise ConnectionError("redis is down")

    controller = start_bounce_server(settings, "127.0.0.1", free_port(), queue=no_queue)
    try:
        with smtp(controller) as client:
            assert client.sendmail("", [sent.verp], b"Subject: x\r\n\r\nx\r\n") == {}
    finally:
        controller.stop()
    refresh(session)
    [message] = session.scalars(select(InboundMessage))
    assert message.processed_at is None  # inbound.sweep queues it (see test_inbound)


def test_the_default_queue_publishes_the_processing_task(settings, sent):
    published = []
    previous = jobqueue.set_backend(lambda name, args, countdown: published.append((name, args)))
    try:
        inbound_id = store_committed(b"Subject: x\r\n\r\nx\r\n", [sent.verp])
        inbound.enqueue(inbound_id)
    finally:
        jobqueue.set_backend(previous)
    assert published == [("tasks.bounces.process_inbound", (inbound_id,))]


def test_a_celery_worker_processes_what_the_server_stored(settings, session, sent, worker):
    import time

    controller = start_bounce_server(settings, "127.0.0.1", free_port())  # queues for real
    raw = dsn(sent, "reader@example.org", "5.2.2", "552 5.2.2 <reader@example.org>: Mailbox full")
    logged_before = worker.log.stat().st_size
    try:
        with smtp(controller) as client:
            client.sendmail("", [sent.verp], raw)
    finally:
        controller.stop()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        refresh(session)
        action = session.scalar(select(Bounce.action))
        if action:
            break
        time.sleep(0.2)
    assert action == "counted 1 of 3"
    assert session.scalar(select(InboundMessage.outcome)).startswith("soft reader@example.org")
    # The worker's log says the task ran, not about whom (Celery logs what a task returns).
    while time.monotonic() < deadline:
        logged = worker.log.read_bytes()[logged_before:]
        if b"process_inbound" in logged and b"succeeded" in logged:
            break
        time.sleep(0.2)
    assert b"succeeded" in logged and b"reader@example.org" not in logged
