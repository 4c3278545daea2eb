"""Addresses on the wire: SMTPUTF8 only when needed and offered, IDN domains as A-labels,
BODY=8BITMIME for 8-bit bytes; bulk alerts and transactional mail, on a loopback SMTP server
with and without SMTPUTF8."""

from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import func, select, update

from clarion import jobqueue
from clarion.alerts.rendering import RenderedMail
from clarion.config import get_settings, reset_settings
from clarion.delivery import dispatch, mailer, sending, testsend
from clarion.errors import Unsendable, ValidationError
from clarion.models import Alert, AlertStatus, Bounce, Delivery, DeliveryStatus, Subscriber
from tests.faultsmtp import FaultServer
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list

UTF8_LOCAL = "анна@пример.рф"
IDN_ONLY = "leser@faß.example"


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.fixture
def configure(settings, monkeypatch):
    def apply(server: FaultServer):
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        monkeypatch.setenv("CLARION_RETRY_BASE_SECONDS", "0.05")
        monkeypatch.setenv("CLARION_RETRY_MAX_SECONDS", "0.2")
        reset_settings()
        return get_settings()

    return apply


def _audience(session):
    """Four readers: two plain, one IDN domain, one non-ASCII local part."""
    alerts = make_list(session)
    ids = make_audience(session, alerts, 4)
    for sid, address in zip(ids[2:], (IDN_ONLY, UTF8_LOCAL), strict=True):
        session.execute(update(Subscriber).where(Subscriber.id == sid).values(email=address))
    session.commit()
    return alerts


def _send(session, queue, alerts) -> Alert:
    alert = make_alert(session, [alerts])
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)
    queue.drain(timeout=60)
    refresh(session)
    return session.get(Alert, alert.id)


def _row(session, alert_id: int, address: str) -> Delivery:
    return session.scalar(
        select(Delivery)
        .join(Subscriber)
        .where(Delivery.alert_id == alert_id, Subscriber.email == address)
    )


def test_a_relay_without_smtputf8_fails_only_that_reader_and_never_pauses(
    session, configure, queue
):
    alerts = _audience(session)
    with FaultServer(smtputf8=False) as server:
        configure(server)
        alert = _send(session, queue, alerts)
    assert alert.status == AlertStatus.SENT  # finished, not paused
    failed = _row(session, alert.id, UTF8_LOCAL)
    assert failed.status == DeliveryStatus.FAILED
    assert "non-ASCII local part" in failed.last_reply and "SMTPUTF8" in failed.last_reply
    # Not a bounce of the reader: nothing recorded against the address, still subscribed.
    assert session.scalar(select(func.count()).select_from(Bounce)) == 0
    # The others went out, the IDN domain as A-labels, and no envelope asked for SMTPUTF8.
    got = dict(server.handler.envelopes)
    assert set(got) == {"r0@example.org", "r1@example.org", "leser@xn--fa-hia.example"}
    assert not any("SMTPUTF8" in params for params in got.values())


def test_smtputf8_only_for_the_reader_who_needs_it(session, configure, queue):
    alerts = _audience(session)
    with FaultServer(keep=True) as server:
        configure(server)
        alert = _send(session, queue, alerts)
    assert alert.status == AlertStatus.SENT
    got = dict(server.handler.envelopes)
    assert got[UTF8_LOCAL.replace("пример.рф", "xn--e1afmkfd.xn--p1ai")] == (
        "SMTPUTF8",
        "BODY=8BITMIME",
    )
    assert got["r0@example.org"] == got["leser@xn--fa-hia.example"] == ()
    raw = next(m for _, rcpt, m in server.handler.messages if rcpt.startswith("анна"))
    assert "To: анна@xn--e1afmkfd.xn--p1ai\r\n".encode() in raw


def _mail(text: str = "Grüße aus München\n") -> RenderedMail:
    return RenderedMail("Bitte bestätigen", f"<p>{text}</p>", text)


def _notice(to: str, mail: RenderedMail | None = None) -> mailer.Notice:
    return mailer.Notice("test", to, mail or _mail())


def test_the_transactional_to_header_holds_the_address_itself(settings):
    ascii_form = mailer.build(_notice(IDN_ONLY), "b+x@b.example.org", settings)
    raw = ascii_form.data
    assert b"\r\nTo: leser@xn--fa-hia.example\r\n" in raw and not ascii_form.smtputf8
    utf8 = mailer.build(_notice(UTF8_LOCAL), "b+x@b.example.org", settings)
    raw = utf8.data
    assert utf8.smtputf8
    # Never an encoded-word inside an address (RFC 2047 5): the UTF-8 local part as it is.
    assert "\r\nTo: анна@xn--e1afmkfd.xn--p1ai\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]


def test_transactional_mail_declares_8bit_bodies_and_smtputf8_only_when_needed(session, configure):
    with FaultServer(keep=True) as server:
        settings = configure(server)
        for to in (IDN_ONLY, UTF8_LOCAL):
            assert mailer.send(session, _notice(to), None, settings).sent
        ascii_body = _mail("Plain words only\n")
        assert mailer.send(session, _notice("r@example.org", ascii_body), None, settings).sent
    # SIZE= when offered; what matters here is the rest.
    got = {
        r: tuple(p for p in ps if not p.startswith("SIZE=")) for r, ps in server.handler.envelopes
    }
    # The parts are base64, the domain in A-labels: 7-bit unless a header holds UTF-8.
    assert got["leser@xn--fa-hia.example"] == ()
    assert got["анна@xn--e1afmkfd.xn--p1ai"] == ("SMTPUTF8", "BODY=8BITMIME")
    assert got["r@example.org"] == ()
    msg = email.message_from_bytes(server.handler.messages[0][2], policy=email.policy.default)
    assert msg.get_body(("plain",)).get_content().rstrip() == "Grüße aus München"


def test_transactional_mail_to_a_utf8_address_on_a_relay_without_smtputf8(session, configure):
    with FaultServer(smtputf8=False) as server:
        settings = configure(server)
        with pytest.raises(Unsendable, match="does not offer SMTPUTF8"):
            mailer.send(session, _notice(UTF8_LOCAL), None, settings)
        assert mailer.send(session, _notice(IDN_ONLY), None, settings).sent
    assert [rcpt for rcpt, _ in server.handler.envelopes] == ["leser@xn--fa-hia.example"]


def test_a_test_send_to_a_utf8_address_on_a_relay_without_smtputf8_says_so(
    session, configure, make_editor
):
    editor, _ = make_editor("editor")
    alerts = make_list(session)
    alert = make_alert(session, [alerts])
    with FaultServer(smtputf8=False) as server:
        configure(server)
        with pytest.raises(ValidationError) as caught:
            testsend.send_test(session, editor, alert, UTF8_LOCAL, None)
    assert "SMTPUTF8" in caught.value.errors["test_to"]
    assert server.handler.envelopes == []
