"""Transactional mail leaves the way alerts do: the same builder, every DKIM key, a VERP envelope
whose token names the mail; a bounce of it (returned by a real Postfix, or refused at RCPT)
reaches the bounce policy against that address, and no later confirmation goes there."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from clarion.actions import petition_notices
from clarion.audience import disclosure, notices
from clarion.bounce_classify import RecipientReport, Report
from clarion.bounces import inbound
from clarion.bounces.refusals import BatchRefusals
from clarion.bounces.server import start_bounce_server
from clarion.config import get_settings, reset_settings
from clarion.db import utcnow
from clarion.delivery import mailer, testsend
from clarion.errors import InvalidToken
from clarion.models import (
    Bounce,
    BounceClass,
    NoticeMail,
    Signature,
    Subscriber,
    Suppression,
)
from clarion.tokens import NOTICE_VERP, VERP, delivery_tokens
from tests.dkimcheck import dkimpy_results, key_records, mail_dkim
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh, sign_up, wait_until
from tests.integration.alertkit import make_petition
from tests.mailservers import PostfixServer
from tests.sendkit import make_alert, make_list, write_keys
from tests.services import free_port

GONE = "gone@example.org"
GONE_REPLY = "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"
VERP_ADDRESS = re.compile(r"b\+([a-z0-9]{26})@(.+)")


@pytest.fixture
def configure(settings, monkeypatch, tmp_path):
    """Point Clarion at a server, signing with an RSA and an Ed25519 key together."""
    keys = write_keys(tmp_path)

    def apply(port: int):
        monkeypatch.setenv("CLARION_SMTP_URL", f"smtp://127.0.0.1:{port}")
        monkeypatch.setenv("CLARION_DKIM_DOMAIN", "clarion.test")
        monkeypatch.setenv("CLARION_DKIM_KEYS", f"rsa2026:{keys['rsa']},ed2026:{keys['ed25519']}")
        reset_settings()
        return get_settings()

    return apply


def _notice_of(envelope_from: str, session) -> NoticeMail:
    match = VERP_ADDRESS.fullmatch(envelope_from)
    assert match and match.group(2) == get_settings().bounce_domain, envelope_from
    token = match.group(1)
    # Its own purpose: the token is worthless as an alert delivery's VERP token.
    with pytest.raises(InvalidToken):
        delivery_tokens(VERP).decode(token)
    notice = session.get(NoticeMail, delivery_tokens(NOTICE_VERP).decode(token))
    assert notice is not None
    return notice


def _send_every_kind(session, lists, make_editor) -> None:
    """A confirmation, a signature confirmation, a data link and a test send."""
    refusals = BatchRefusals()
    assert notices.send_confirmation(
        session, sign_up(session, lists["news"].id, "ana@example.org"), refusals
    )
    petition = make_petition(session, require_confirmation=True)
    signature = Signature(
        petition_id=petition.id,
        email="sig@example.org",
        name="Ola",
        created_at=utcnow(),
        mail_due_at=utcnow(),  # its confirmation mail owed, as signing leaves it
    )
    reader = Subscriber(email="reader@example.org", name="Reader")
    session.add_all([signature, reader])
    session.commit()
    assert petition_notices.send_signature_confirmation(session, signature.id, refusals)
    assert disclosure.send_data_link(session, reader.id, refusals)
    editor, _ = make_editor("editor")
    alerts = make_list(session, "urgent", from_name="Free Them", from_email="news@clarion.test")
    alert = make_alert(session, [alerts], sender_list_id=alerts.id)
    testsend.send_test(session, editor, alert, "me@example.org", None)
    session.commit()


def test_every_transactional_mail_is_signed_by_both_keys_and_leaves_by_its_verp_address(
    session, lists, configure, make_editor, tmp_path
):
    with FaultServer(keep=True) as server:
        settings = configure(server.port)
        _send_every_kind(session, lists, make_editor)
    records = key_records(settings)
    assert len(records) == 2
    kinds = {}
    for envelope_from, rcpt, raw in server.handler.messages:
        notice = _notice_of(envelope_from, session)
        assert notice.email == rcpt and notice.sent_at is not None
        kinds[notice.kind] = rcpt
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert b"a=rsa-sha256" in head and b"a=ed25519-sha256" in head
        assert dkimpy_results(raw, records) == [True, True], notice.kind
        checked = {c.algorithm: c.result for c in mail_dkim(raw, records, tmp_path)}
        # Debian's Mail::DKIM knows no Ed25519: unverifiable there, never forged.
        assert checked["rsa-sha256"] == "pass", (notice.kind, checked)
        assert checked["ed25519-sha256"] in ("pass", "invalid"), (notice.kind, checked)
        forged = raw.replace(b"\r\nSubject: ", b"\r\nSubject: Re: ", 1)
        assert dkimpy_results(forged, records) == [False, False]
    assert kinds == {
        "confirm": "ana@example.org",
        "signature_confirm": "sig@example.org",
        "your_data": "reader@example.org",
        "test": "me@example.org",
    }
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    confirm = session.scalar(select(NoticeMail).where(NoticeMail.kind == "confirm"))
    assert confirm.subscriber_id == reader.id


def test_a_refusal_at_rcpt_is_a_hard_bounce_and_no_later_confirmation_goes(
    session, lists, configure, caplog
):
    with FaultServer(Plan(refuse={GONE: GONE_REPLY}), keep=True) as server:
        configure(server.port)
        consent_id = sign_up(session, lists["news"].id, GONE)
        assert not notices.send_confirmation(session, consent_id, BatchRefusals())
        session.commit()
        refresh(session)
        reader = session.scalar(select(Subscriber).where(Subscriber.email == GONE))
        [bounce] = session.scalars(select(Bounce)).all()
        assert (bounce.classification, bounce.email, bounce.subscriber_id) == (
            BounceClass.HARD,
            GONE,
            reader.id,
        )
        assert bounce.source == "delivery" and "confirm mail refused" in bounce.reason
        assert session.scalar(select(Suppression.email)) == GONE
        # The retry of the task owes nothing any more; a signature confirmation later is
        # stopped by the suppression: nothing goes out.
        assert not notices.send_confirmation(session, consent_id, BatchRefusals())
        signature = Signature(
            petition_id=make_petition(session, require_confirmation=True).id,
            email=GONE,
            name="Gone",
            mail_due_at=utcnow(),
        )
        session.add(signature)
        session.commit()
        with caplog.at_level(logging.WARNING, logger="clarion.delivery.mailer"):
            assert not petition_notices.send_signature_confirmation(
                session, signature.id, BatchRefusals()
            )
        assert "signature_confirm mail not sent" in caplog.text
        assert "suppressed (hard_bounce" in caplog.text
        assert GONE not in caplog.text  # the log names the reader's id, not the address
    assert server.handler.refused["550"] == 1 and server.handler.messages == []


@pytest.mark.parametrize(
    "reply",
    [
        "450 4.2.1 <gone@example.org>: try again later",
        "550 5.7.1 Message rejected: sender address on a blocklist",
        "550 5.7.1 <gone@example.org>: message from a blocklisted sender refused",
    ],
)
def test_a_temporary_refusal_or_one_of_our_sending_is_retried_and_blames_no_reader(
    session, lists, configure, reply, caplog
):
    with FaultServer(Plan(refuse={GONE: reply})) as server:
        configure(server.port)
        consent_id = sign_up(session, lists["news"].id, GONE)
        with (
            caplog.at_level(logging.WARNING, logger="clarion.delivery.mailer"),
            pytest.raises(mailer.NoticeDeferred, match=reply[:3]),
        ):
            notices.send_confirmation(session, consent_id, BatchRefusals())
    assert GONE not in caplog.text  # a refusal of our sending is logged, without the address
    session.rollback()
    assert session.scalar(select(Bounce.id)) is None
    assert session.scalar(select(Suppression.id)) is None


@pytest.fixture
def relay(configure, settings):
    """The sink refusing GONE, the bounce server, and a real Postfix between Clarion and them."""
    arrived: list[int] = []
    bounce_port = free_port()
    bounce_server = start_bounce_server(settings, "127.0.0.1", bounce_port, queue=arrived.append)
    with FaultServer(Plan(refuse={GONE: GONE_REPLY}), keep=True) as sink:
        postfix = PostfixServer(sink.port, settings.bounce_domain, bounce_port).start()
        try:
            configure(postfix.port)
            yield sink, postfix, arrived
        finally:
            postfix.cleanup()
            bounce_server.stop()


@pytest.mark.timeout(180)
def test_a_dsn_for_a_confirmation_suppresses_the_address_and_no_later_confirmation_goes(
    relay, session, lists, client
):
    sink, postfix, arrived = relay
    consent_id = sign_up(session, lists["news"].id, GONE)
    # Postfix takes it (250), then its delivery to the sink fails: a DSN to our VERP address.
    assert notices.send_confirmation(session, consent_id, BatchRefusals())
    session.commit()
    assert wait_until(lambda: len(arrived) >= 1), postfix.log.read_text()[-3000:]
    for inbound_id in arrived:
        inbound.process(inbound_id)
    refresh(session)
    reader = session.scalar(select(Subscriber).where(Subscriber.email == GONE))
    [bounce] = session.scalars(select(Bounce)).all()
    assert (bounce.classification, bounce.status_code, bounce.action) == (
        BounceClass.HARD,
        "5.1.1",
        "suppressed",
    )
    assert (bounce.email, bounce.subscriber_id, bounce.source) == (GONE, reader.id, "smtp")
    assert bounce.delivery_id is None and bounce.reason.startswith("confirm mail")
    assert session.scalar(select(Suppression.email)) == GONE

    # The sign-up page says what it says to anyone; no confirmation goes to the dead address.
    data = {"lists": [str(lists["news"].id)]}
    again = client.post("/subscribe", data={**data, "email": GONE}).get_data(as_text=True)
    other = client.post("/subscribe", data={**data, "email": "x@example.org"}).get_data(
        as_text=True
    )
    assert again == other
    refresh(session)
    assert not notices.send_confirmation(session, consent_id, BatchRefusals())
    assert sink.handler.refused["550"] == 1 and sink.handler.counts[GONE] == 0


def test_a_provider_report_finds_a_transactional_mail_by_its_message_id(session):
    notice = NoticeMail(kind="signature_confirm", email="sig@example.org", message_id="<m1@x>")
    other = NoticeMail(kind="confirm", email="else@example.org", message_id="<m2@x>")
    session.add_all([notice, other])
    session.commit()
    failed = RecipientReport("sig@example.org", BounceClass.HARD, "5.1.1", "no such user", "")
    report = Report(BounceClass.HARD, (failed,), (), {"Message-ID": "m1@x"})
    [finding] = inbound.findings(session, report, "ses", b"{}")
    assert (finding.email, finding.classification, finding.subscriber_id) == (
        "sig@example.org",
        BounceClass.HARD,
        None,
    )
    assert finding.reason.startswith("signature_confirm mail")
    # Returned by mail, only the VERP token counts: a quoted Message-ID could be anyone's.
    assert inbound.findings(session, report, "smtp", b"") == []
