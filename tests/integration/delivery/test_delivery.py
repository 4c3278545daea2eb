"""The delivery engine end to end in this process: real database, Redis and SMTP on loopback."""

from __future__ import annotations

import email
import email.policy
import re

import dkim as dkimpy
import pytest
from sqlalchemy import select

from clarion import jobqueue, tokens
from clarion.audience import subscribers
from clarion.bounces.numbers import BouncePolicy
from clarion.config import get_settings, reset_settings
from clarion.delivery import batchrun, dispatch, sending
from clarion.models import (
    AdminNotice,
    Alert,
    AlertStatus,
    Bounce,
    BounceClass,
    Delivery,
    DeliveryStatus,
    Subscriber,
    Suppression,
)
from clarion.tokens import CLICK, MAILTO, VERP, delivery_tokens
from tests.dkimcheck import mail_dkim
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list, write_keys


@pytest.fixture
def queue():
    """Tasks published by the domain run here, in order, when drained."""
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.fixture
def configure(settings, monkeypatch):
    """Point Clarion at a fault server (and other CLARION_* values) for this test."""

    def apply(server: FaultServer, **env: str):
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        monkeypatch.setenv("CLARION_RETRY_BASE_SECONDS", "0.05")
        monkeypatch.setenv("CLARION_RETRY_MAX_SECONDS", "0.2")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        return get_settings()

    return apply


def send(session, alert: Alert, queue: InlineQueue, timeout: float = 60) -> Alert:
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)
    queue.drain(timeout=timeout)
    refresh(session)
    return session.get(Alert, alert.id)


def ledger(session, alert_id: int) -> dict[str, str]:
    rows = session.execute(
        select(Subscriber.email, Delivery.status)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.alert_id == alert_id)
    )
    return {email_: DeliveryStatus(status).value for email_, status in rows}


def test_every_subscriber_gets_one_message_with_the_bulk_headers(session, configure, queue):
    alerts, other = make_list(session, "alerts", name="Urgent actions"), make_list(session, "x")
    make_audience(session, alerts, 23)
    make_audience(session, other, 3, prefix="other")
    left = make_audience(session, alerts, 1, prefix="left")[0]
    subscribers.unsubscribe(session, session.get(Subscriber, left), None)
    make_audience(session, alerts, 1, prefix="gone")
    session.add(Suppression(email="gone0@example.org", reason="manual"))
    session.commit()
    with FaultServer(keep=True) as server:
        configure(server, CLARION_BATCH_SIZE="5", CLARION_SEND_WINDOW="2")
        alert = send(session, make_alert(session, [alerts]), queue)
    handler = server.handler
    assert alert.status == AlertStatus.SENT and alert.finished_at is not None
    assert set(handler.counts) == {f"r{i}@example.org" for i in range(23)}
    assert handler.duplicates() == 0
    assert set(ledger(session, alert.id).values()) == {"sent"}
    assert alert.recipients == 23

    mail_from, rcpt, raw = handler.messages[0]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    row = session.scalar(select(Delivery).join(Subscriber).where(Subscriber.email == rcpt))
    verp, mailto = (delivery_tokens(p).encode(row.id) for p in (VERP, MAILTO))
    assert mail_from == f"b+{verp}@bounces.clarion.test"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"<mailto:unsubscribe+{mailto}@bounces.clarion.test>" in msg["List-Unsubscribe"]
    token = delivery_tokens(CLICK).encode(row.id)
    assert msg["List-Id"] == "Urgent actions <alerts.bounces.clarion.test>"
    assert msg["Feedback-ID"] == f"{alert.uid}:alerts:clarion.test"
    assert rcpt.split("@")[0] not in msg["Message-ID"] and msg["Message-ID"] == row.message_id
    assert msg.get_content_type() == "multipart/alternative"
    assert b"\n" not in raw.replace(b"\r\n", b"")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert f"/r/{token}/0" in html and f"/r/{token}/1" in text
    # What a reader can forward (the body and its links) carries the click token alone.
    assert not {verp, mailto} & {*re.findall(r"[a-z0-9]{26}", html + text)}
    assert "https://blog.example.org/letter" not in html
    assert alert.frozen_links == [
        "https://blog.example.org/letter",
        "https://blog.example.org/write?to=ales&lang=en",
    ]
    # The one-click link in the mail really unsubscribes this reader.
    unsubscribe_url = msg["List-Unsubscribe"].split(">")[0].lstrip("<")
    assert unsubscribe_url in html and unsubscribe_url in text
    subscribers.unsubscribe_by_token(session, unsubscribe_url.rsplit("/", 1)[1])
    session.commit()
    assert subscribers.scope_list_ids(
        session, tokens.read_unsubscribe_token(unsubscribe_url.rsplit("/", 1)[1])
    ) == [alerts.id]

    progress = sending.progress(session, alert.id)
    assert progress.counts["sent"] == 23 and progress.remaining == 0 and progress.done


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_every_message_carries_a_dkim_signature_that_verifies(
    session, configure, queue, tmp_path, algorithm
):
    key = write_keys(tmp_path)[algorithm]
    alerts = make_list(session, "alerts", from_name="Free Them", from_email="news@clarion.test")
    make_audience(session, alerts, 12)
    with FaultServer(keep=True) as server:
        configure(
            server,
            CLARION_DKIM_DOMAIN="clarion.test",
            CLARION_DKIM_SELECTOR="s2026",
            CLARION_DKIM_KEY_FILE=str(key),
        )
        send(session, make_alert(session, [alerts], sender_list_id=alerts.id), queue)
    from clarion.delivery import dkim, messages

    record = dkim.signer_for(get_settings(), messages.SIGNED).dns_record().encode()

    def dns(name, timeout=5):
        assert name == b"s2026._domainkey.clarion.test."
        return record

    raws = [raw for _, _, raw in server.handler.messages]
    assert len(raws) == 12
    assert all(dkimpy.verify(raw, dnsfunc=dns) for raw in raws)
    # An independent verifier (Perl's Mail::DKIM) on what the server received; Debian's knows
    # no Ed25519, so it may only call that signature unverifiable.
    records = {"s2026._domainkey.clarion.test": record.decode()}
    [checked] = mail_dkim(raws[0], records, tmp_path)
    assert checked.result in ({"pass"} if algorithm == "rsa" else {"pass", "invalid"}), checked
    signed = email.message_from_bytes(raws[0], policy=email.policy.default)
    expected = "a=rsa-sha256" if algorithm == "rsa" else "a=ed25519-sha256"
    assert expected in signed["DKIM-Signature"]
    tampered = raws[0].replace(b"\r\n\r\n--=_clarion", b"\r\n\r\nP.S. donate\r\n--=_clarion", 1)
    assert tampered != raws[0] and not dkimpy.verify(tampered, dnsfunc=dns)
    forged = raws[0].replace(b"Subject: ", b"Subject: Re: ", 1)
    assert not dkimpy.verify(forged, dnsfunc=dns)


def test_temporary_failures_are_retried_until_everyone_has_the_message(session, configure, queue):
    alerts = make_list(session)
    make_audience(session, alerts, 60)
    with FaultServer(Plan(transient_share=0.3)) as server:
        configure(server, CLARION_BATCH_SIZE="20")
        alert = send(session, make_alert(session, [alerts]), queue)
    assert alert.status == AlertStatus.SENT
    assert server.handler.refused["451"] + server.handler.refused["421"] > 5
    assert len(server.handler.counts) == 60 and server.handler.duplicates() == 0
    assert set(ledger(session, alert.id).values()) == {"sent"}
    retried = session.scalar(
        select(Delivery.id).where(Delivery.alert_id == alert.id, Delivery.attempts > 1).limit(1)
    )
    assert retried is not None


def test_refusals_fail_the_row_record_a_bounce_and_suppress_hard_ones(session, configure, queue):
    alerts = make_list(session)
    make_audience(session, alerts, 6)
    plan = Plan(
        refuse={
            "r1@example.org": "550 5.1.1 <r1@example.org>: Recipient address rejected: unknown",
            "r2@example.org": "552 5.2.2 Mailbox full",
        }
    )
    with FaultServer(plan) as server:
        configure(server)
        alert = send(session, make_alert(session, [alerts]), queue)
    assert alert.status == AlertStatus.SENT
    states = ledger(session, alert.id)
    assert states["r1@example.org"] == states["r2@example.org"] == "failed"
    assert [s for e, s in states.items() if e not in {"r1@example.org", "r2@example.org"}] == [
        "sent"
    ] * 4
    bounces = {b.email: b for b in session.scalars(select(Bounce))}
    assert bounces["r1@example.org"].classification == BounceClass.HARD
    assert bounces["r1@example.org"].status_code == "5.1.1"
    assert bounces["r2@example.org"].classification == BounceClass.SOFT
    # The same policy as every inbound report: counted once, with the reply as evidence.
    assert bounces["r2@example.org"].action == "counted 1 of 3"
    assert bounces["r2@example.org"].evidence == b"552 5.2.2 Mailbox full"
    suppressed = set(session.scalars(select(Suppression.email)))
    assert suppressed == {"r1@example.org"}


def test_a_refusal_whose_words_blame_our_sending_waits_and_tells_the_owners(
    session, configure, queue
):
    alerts = make_list(session)
    make_audience(session, alerts, 4)
    blocked = "550 Client host [192.0.2.7] blocked using zen.spamhaus.org"
    with FaultServer(Plan(refuse={"r1@example.org": blocked})) as server:
        configure(server, CLARION_RETRY_EXPIRE_HOURS="1")
        alert = make_alert(session, [alerts])
        sending.start(session, alert)
        session.commit()
        dispatch.enqueue_dispatch(alert.id)
        queue.drain(timeout=5, stop=lambda: server.handler.refused["550"] >= 1)
    refresh(session)
    # No 5.7.x code, but a blocklist: not the reader's fault. Deferred, not failed, nothing
    # recorded against the reader; the owners see why.
    assert ledger(session, alert.id)["r1@example.org"] == "deferred"
    assert session.scalar(select(Bounce.id).limit(1)) is None
    notice = session.scalar(select(AdminNotice))
    assert notice.alert_id == alert.id and "spamhaus" in notice.detail


def test_a_storm_of_policy_refusals_pauses_the_alert_and_resume_finishes_it(
    session, configure, queue
):
    alerts = make_list(session)
    make_audience(session, alerts, 40)
    with FaultServer(Plan(policy_after=3)) as server:
        configure(server, CLARION_BATCH_SIZE="10")
        alert = send(session, make_alert(session, [alerts]), queue)
        assert alert.status == AlertStatus.PAUSED
        assert "5.7.1" in alert.status_reason and "not the readers" in alert.status_reason
        assert server.handler.refused["550"] <= BouncePolicy().sender_fault_limit
        assert "failed" not in ledger(session, alert.id).values()
        assert not session.scalar(select(Bounce.id).limit(1))

        server.handler.plan.policy_after = None
        sending.resume(session, alert)
        session.commit()
        dispatch.enqueue_dispatch(alert.id)
        queue.drain()
    refresh(session)
    assert session.get(Alert, alert.id).status == AlertStatus.SENT
    assert len(server.handler.counts) == 40 and server.handler.duplicates() == 0


def test_a_reader_who_unsubscribes_during_the_batch_gets_nothing(
    session, configure, queue, monkeypatch
):
    alerts = make_list(session)
    ids = make_audience(session, alerts, 12)
    monkeypatch.setattr(batchrun, "FLUSH_EVERY", 2)
    leaver = ids[9]

    with FaultServer() as server:
        configure(server)
        original = server.handler.handle_DATA

        async def data_then_unsubscribe(srv, smtp_session, envelope):
            reply = await original(srv, smtp_session, envelope)
            if envelope.rcpt_tos == ["r3@example.org"]:
                from clarion.db import session_scope

                with session_scope() as s:
                    subscribers.unsubscribe(s, s.get(Subscriber, leaver), None)
            return reply

        server.handler.handle_DATA = data_then_unsubscribe
        alert = send(session, make_alert(session, [alerts]), queue)
    assert alert.status == AlertStatus.SENT
    assert "r9@example.org" not in server.handler.counts
    assert len(server.handler.counts) == 11
    assert ledger(session, alert.id)["r9@example.org"] == "skipped"


def test_a_reader_suppressed_after_the_freeze_gets_nothing(session, configure, queue, monkeypatch):
    """The ledger is written from the audience at dispatch; a suppression added after that
    (a complaint, a hard bounce from another alert) must still stop the mail at send time."""
    alerts = make_list(session)
    make_audience(session, alerts, 12)
    monkeypatch.setattr(batchrun, "FLUSH_EVERY", 2)

    with FaultServer() as server:
        configure(server)
        original = server.handler.handle_DATA

        async def data_then_suppress(srv, smtp_session, envelope):
            reply = await original(srv, smtp_session, envelope)
            if envelope.rcpt_tos == ["r3@example.org"]:
                from clarion.db import session_scope

                with session_scope() as s:
                    s.add(Suppression(email="r9@example.org", reason="complaint"))
            return reply

        server.handler.handle_DATA = data_then_suppress
        alert = send(session, make_alert(session, [alerts]), queue)
    assert alert.status == AlertStatus.SENT
    assert "r9@example.org" not in server.handler.counts
    assert len(server.handler.counts) == 11
    assert ledger(session, alert.id)["r9@example.org"] == "skipped"


def test_send_to_unreached_reaches_only_those_without_the_message(session, configure, queue):
    alerts = make_list(session)
    make_audience(session, alerts, 5)
    plan = Plan(refuse={"r2@example.org": "452 4.2.2 Mailbox full, try later"})
    with FaultServer(plan) as server:
        configure(server, CLARION_RETRY_EXPIRE_HOURS="1")
        alert = make_alert(session, [alerts])
        sending.start(session, alert)
        session.commit()
        dispatch.enqueue_dispatch(alert.id)
        queue.drain(timeout=2)
        refresh(session)
        with pytest.raises(Exception, match="finished sending or was cancelled"):
            sending.send_to_unreached(session, session.get(Alert, alert.id))
        sending.cancel(session, session.get(Alert, alert.id))
        session.commit()
        assert ledger(session, alert.id)["r2@example.org"] == "skipped"

        make_audience(session, alerts, 1, prefix="late")
        server.handler.plan.refuse.clear()
        follow_up = sending.send_to_unreached(session, session.get(Alert, alert.id))
        session.commit()
        assert follow_up.frozen_html == alert.frozen_html and follow_up.parent_id == alert.id
        dispatch.enqueue_dispatch(follow_up.id)
        queue.drain()
    refresh(session)
    assert set(ledger(session, follow_up.id)) == {"r2@example.org", "late0@example.org"}
    assert session.get(Alert, follow_up.id).status == AlertStatus.SENT
    assert server.handler.duplicates() == 0


def test_edits_after_the_start_never_reach_the_readers(session, configure, queue):
    alerts = make_list(session, "alerts", from_name="Free Them", from_email="news@clarion.test")
    make_audience(session, alerts, 4)
    with FaultServer(keep=True) as server:
        configure(server)
        alert = make_alert(session, [alerts], sender_list_id=alerts.id)
        sending.start(session, alert)
        session.commit()
        # The editor changes the draft and the list's sender before any worker ran.
        alert.subject = "Changed subject"
        alert.fields = {"body_md": "Changed body https://elsewhere.example.org"}
        alerts.from_email = "changed@clarion.test"
        session.commit()
        dispatch.enqueue_dispatch(alert.id)
        queue.drain()
    raws = [raw for _, _, raw in server.handler.messages]
    assert len(raws) == 4
    for raw in raws:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == "1,000 days: write to Ales"
        assert msg["From"] == "Free Them <news@clarion.test>"
        assert "Changed body" not in msg.get_body(("plain",)).get_content()


def test_scheduled_alerts_start_when_due_and_unsendable_ones_go_back_to_draft(
    session, configure, queue
):
    from datetime import timedelta

    from clarion.db import utcnow

    alerts, empty = make_list(session), make_list(session, "empty")
    make_audience(session, alerts, 3)
    due = make_alert(
        session, [alerts], status=AlertStatus.SCHEDULED, scheduled_at=utcnow() - timedelta(1)
    )
    later = make_alert(
        session, [alerts], status=AlertStatus.SCHEDULED, scheduled_at=utcnow() + timedelta(1)
    )
    nobody = make_alert(
        session, [empty], status=AlertStatus.SCHEDULED, scheduled_at=utcnow() - timedelta(1)
    )
    with FaultServer() as server:
        configure(server)
        assert dispatch.start_due_alerts() == [due.id]
        queue.drain()
    refresh(session)
    assert session.get(Alert, due.id).status == AlertStatus.SENT
    assert len(server.handler.counts) == 3
    assert session.get(Alert, later.id).status == AlertStatus.SCHEDULED
    back = session.get(Alert, nobody.id)
    assert back.status == AlertStatus.DRAFT and back.scheduled_at is None
    assert "did not start" in back.status_reason and "no one to send to" in back.status_reason
