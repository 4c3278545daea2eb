"""Welcome mail: once per reader on confirmation, through the delivery engine, after the commit."""

from __future__ import annotations

import email
import email.policy

import dkim as dkimpy
import pytest
from sqlalchemy import func, select

from clarion import jobqueue
from clarion.alerts import campaigns
from clarion.audience import lists, subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.config import get_settings, reset_settings
from clarion.db import session_factory
from clarion.delivery import dispatch, sending
from clarion.errors import InvalidTransition, ValidationError
from clarion.models import (
    Alert,
    AlertStatus,
    ConsentRecord,
    Delivery,
    MailingList,
    Series,
    Subscriber,
)
from clarion.tokens import CLICK, MAILTO, VERP, delivery_tokens
from tests.faultsmtp import FaultServer
from tests.helpers import csrf_from, refresh
from tests.sendkit import InlineQueue, write_keys


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.fixture
def mail(settings, monkeypatch, tmp_path):
    """An SMTP server keeping every message; DKIM signing on."""
    key = write_keys(tmp_path)["ed25519"]
    with FaultServer(keep=True) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        monkeypatch.setenv("CLARION_DKIM_DOMAIN", "clarion.test")
        monkeypatch.setenv("CLARION_DKIM_SELECTOR", "s2026")
        monkeypatch.setenv("CLARION_DKIM_KEY_FILE", str(key))
        reset_settings()
        yield server.handler


@pytest.fixture
def welcome(session, make_editor, lists_):
    """The alerts list with a welcome mail chosen by an editor."""
    editor = make_editor("editor")[0]
    draft = campaigns.create_draft(
        session,
        editor,
        campaigns.Draft(
            kind="newsletter",
            subject="Welcome to the urgent alerts",
            fields={"body_md": "Thank you. Our first action: https://blog.example.org/start"},
        ),
    )
    lists.set_welcome(session, editor, lists_["alerts"], draft.id)
    session.commit()
    return draft


@pytest.fixture
def lists_(lists):
    return lists


def request(session, address: str, list_ids: list[int], language: str = "en") -> str:
    """Subscribe (pending) and return the confirmation token."""
    outcome = subscribers.subscribe(session, SubscribeRequest(address, list_ids, language=language))
    session.commit()
    return subscribers.confirm_token(session.get(ConsentRecord, outcome.consent_id))


def confirm(client, token: str):
    page = client.get(f"/confirm/{token}")
    return client.post(f"/confirm/{token}", data={"csrf_token": csrf_from(page.text)})


def welcomes(session, alert: Alert) -> dict[str, str]:
    refresh(session)
    rows = session.execute(
        select(Subscriber.email, Delivery.status)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.alert_id == alert.id)
    )
    return {address: status.value for address, status in rows}


def test_a_confirmed_reader_gets_the_welcome_once_with_the_bulk_headers_signed(
    client, session, lists_, welcome, queue, mail
):
    refresh(session)
    frozen = session.get(Alert, welcome.id)
    assert frozen.status == AlertStatus.SENDING and frozen.role == "welcome"
    assert frozen.frozen_at is not None and frozen.dispatched_at is not None
    ana = request(session, "ana@example.org", [lists_["alerts"].id, lists_["news"].id])
    request(session, "ben@example.org", [lists_["alerts"].id])  # never confirms

    assert confirm(client, ana).status_code == 200
    queue.drain()
    assert welcomes(session, welcome) == {"ana@example.org": "sent"}
    assert [rcpt for _, rcpt, _ in mail.messages] == ["ana@example.org"]

    raw = mail.messages[0][2]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    row = session.scalar(select(Delivery).where(Delivery.alert_id == welcome.id))
    token, verp, click = (delivery_tokens(p).encode(row.id) for p in (MAILTO, VERP, CLICK))
    assert message["Subject"] == "Welcome to the urgent alerts"
    assert message["List-Id"] == "Urgent alerts <alerts.bounces.clarion.test>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"unsubscribe+{token}@" in message["List-Unsubscribe"]
    assert mail.messages[0][0] == f"b+{verp}@bounces.clarion.test"
    assert f"/r/{click}/0" in message.get_body(("plain",)).get_content()
    from clarion.delivery import dkim, messages

    record = dkim.signer_for(get_settings(), messages.SIGNED).dns_record().encode()
    assert dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: record)

    # Leaving and joining again asks for a new confirmation, but brings no second welcome.
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    subscribers.unsubscribe(session, reader, [lists_["alerts"].id])
    subscribers.request_resubscribe(
        session, reader, [lists_["alerts"].id], ip=None, user_agent=None
    )
    session.commit()
    latest = session.scalar(select(ConsentRecord).order_by(ConsentRecord.id.desc()).limit(1))
    assert latest.action == "resubscribe"
    again = subscribers.confirm_token(latest)
    assert confirm(client, again).status_code == 200
    queue.drain()
    assert welcomes(session, welcome) == {"ana@example.org": "sent"}
    assert len(mail.messages) == 1
    assert session.get(Alert, welcome.id).recipients == 1


def test_the_welcome_is_queued_only_when_the_confirmation_commits(
    session, settings, lists_, welcome
):
    token = request(session, "ana@example.org", [lists_["alerts"].id])
    confirming = session_factory(settings.database_url)()
    outcome = subscribers.confirm(confirming, token, None)
    assert [alert_id for alert_id, _ in outcome.welcomes] == [welcome.id]
    # Another process (a worker) sees nothing before the commit ...
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    confirming.rollback()  # ... and nothing at all if the confirmation does not commit.
    confirming.close()
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert welcomes(session, welcome) == {}


def test_a_reader_who_leaves_before_the_batch_runs_gets_nothing(
    client, session, lists_, welcome, queue, mail
):
    token = request(session, "ana@example.org", [lists_["alerts"].id])
    assert confirm(client, token).status_code == 200
    refresh(session)
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    subscribers.unsubscribe(session, reader, None)
    session.commit()
    queue.drain()
    assert welcomes(session, welcome) == {"ana@example.org": "skipped"}
    assert mail.messages == []


def test_choosing_replacing_and_refusing_welcome_mails(
    session, make_editor, lists_, welcome, queue, mail
):
    owner = make_editor("owner")[0]
    alerts = session.get(MailingList, lists_["alerts"].id)
    with pytest.raises(ValidationError, match="Choose a draft"):
        lists.set_welcome(session, owner, lists_["news"], welcome.id)
    session.rollback()
    empty = campaigns.create_draft(
        session, owner, campaigns.Draft(kind="newsletter", subject="x", fields={"body_md": "x"})
    )
    empty.fields = {}
    session.commit()
    with pytest.raises(ValidationError, match="cannot be sent yet"):
        lists.set_welcome(session, owner, alerts, empty.id)
    session.rollback()
    with pytest.raises(InvalidTransition, match="welcome mail"):
        sending.send_to_unreached(session, session.get(Alert, welcome.id))
    session.rollback()
    # The active welcome stays open while the list uses it; replaced, it finishes.
    assert dispatch.finish_if_done(welcome.id) is False
    lists.set_welcome(session, owner, session.get(MailingList, alerts.id), None)
    session.commit()
    assert dispatch.finish_if_done(welcome.id) is True
    refresh(session)
    assert session.get(Alert, welcome.id).status == AlertStatus.SENT
    assert lists.welcome_alert_id(session, session.get(MailingList, alerts.id)) is None
    assert session.scalars(select(Series)).all() == []  # the welcome series went with it


def test_the_welcome_speaks_the_readers_language_when_it_has_that_version(
    client, session, make_editor, lists_, queue, mail
):
    editor = make_editor("editor")[0]
    draft = campaigns.create_draft(
        session,
        editor,
        campaigns.Draft(
            kind="newsletter",
            subject="Welcome to the urgent alerts",
            fields={"body_md": "Thank you for joining."},
            language="en",
            translations={
                "ru": {
                    "subject": "Добро пожаловать",
                    "fields": {"body_md": "Спасибо за подписку."},
                }
            },
        ),
    )
    lists.set_welcome(session, editor, lists_["alerts"], draft.id)
    session.commit()
    tokens = [
        request(session, address, [lists_["alerts"].id], language)
        for address, language in (("vera@example.org", "ru"), ("olga@example.org", "pl"))
    ]
    for token in tokens:
        assert confirm(client, token).status_code == 200
    queue.drain()
    got = {
        rcpt: email.message_from_bytes(raw, policy=email.policy.default)
        for _, rcpt, raw in mail.messages
    }
    assert got["vera@example.org"]["Subject"] == "Добро пожаловать"
    assert got["vera@example.org"]["Content-Language"] == "ru"
    assert "Спасибо за подписку." in got["vera@example.org"].get_body(("plain",)).get_content()
    assert got["olga@example.org"]["Subject"] == "Welcome to the urgent alerts"  # no pl version
