"""A confirmation mail owed is not lost with its task: the mail sweep queues it again.

The task that sends a confirmation is published once, after the commit that made the mail
owed. Lost (the web process gone between the commit and the publish, Redis restarted) or out
of retries (the mail server down for hours), it used to leave the reader without the link.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from clarion.actions import petition_notices, signing
from clarion.audience import notices, subscribers
from clarion.bounces.refusals import BatchRefusals
from clarion.config import get_settings, reset_settings
from clarion.db import utcnow
from clarion.delivery import owed
from clarion.models import AdminNotice, ConsentRecord, Editor, NoticeMail, Signature
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh, sign_up, wait_until
from tests.integration.alertkit import make_petition
from tests.services import free_port

DOWN = "421 4.3.2 Service not available, closing transmission channel"


def _due(session, model, record_id: int):
    refresh(session)
    return session.get(model, record_id).mail_due_at


def test_a_sign_up_whose_task_was_lost_gets_its_mail_from_the_sweep(
    session, lists, worker, smtp_sink
):
    from tasks import beat_schedule
    from tasks.mail import sweep_confirmations

    assert beat_schedule()["confirmation-sweep"]["task"] == sweep_confirmations.name
    consent_id = sign_up(session, lists["news"].id, "lost@example.org")
    # Within the first minutes the task may still be on its way: the sweep leaves it alone.
    assert sweep_confirmations() == 0
    session.execute(
        update(ConsentRecord)
        .where(ConsentRecord.id == consent_id)
        .values(mail_due_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    assert sweep_confirmations() == 1
    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["lost@example.org"]
    assert "/confirm/" in mail.text
    assert wait_until(lambda: _due(session, ConsentRecord, consent_id) is None, timeout=30)
    assert sweep_confirmations() == 0  # sent: nothing owed any more


def test_after_its_retries_ran_out_a_confirmation_is_queued_again_and_sent_once(
    session, lists, settings, monkeypatch, smtp_sink
):
    from tasks.mail import send_confirmation

    with FaultServer(Plan(refuse={"late@example.org": DOWN})) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        reset_settings()
        consent_id = sign_up(session, lists["news"].id, "late@example.org")
        # Run eagerly, each retry follows at once: all nine tries fail.
        result = send_confirmation.apply(args=[consent_id])
        assert result.failed()
        assert server.handler.refused["421"] == 9
    refresh(session)
    due = _due(session, ConsentRecord, consent_id)
    # The last try pushed the sweep past the hour it would have waited for another.
    assert due > utcnow() + timedelta(minutes=65)
    assert owed.due_confirmations(session, utcnow())[0] == []
    later = due + timedelta(seconds=1)
    assert owed.due_confirmations(session, later)[0] == [consent_id]
    session.commit()
    # Leased: a second sweep (another beat) does not queue it a second time.
    assert owed.due_confirmations(session, later)[0] == []
    session.commit()
    monkeypatch.setenv("CLARION_SMTP_URL", f"smtp://127.0.0.1:{smtp_sink.port}")
    reset_settings()
    refusals = BatchRefusals()
    assert notices.send_confirmation(session, consent_id, refusals)
    session.commit()
    # The sweep's task and a late retry of the old one: the second finds nothing owed.
    assert not notices.send_confirmation(session, consent_id, refusals)
    session.commit()
    sent = session.scalars(select(NoticeMail).where(NoticeMail.sent_at.is_not(None))).all()
    assert [m.email for m in sent] == ["late@example.org"]
    assert _due(session, ConsentRecord, consent_id) is None
    assert owed.due_confirmations(session, later + timedelta(days=1))[0] == []


def test_a_confirmation_held_back_by_the_resend_guard_is_not_owed(session, lists):
    first = sign_up(session, lists["news"].id, "twice@example.org")
    again = subscribers.subscribe(
        session, subscribers.SubscribeRequest("twice@example.org", [lists["alerts"].id])
    )
    session.commit()
    assert again.consent_id is None  # the guard held its mail back, on purpose
    held = session.scalars(
        select(ConsentRecord.id).where(
            ConsentRecord.id != first, ConsentRecord.action == "subscribe"
        )
    ).one()
    assert _due(session, ConsentRecord, held) is None
    soon = utcnow() + owed.FIRST_LOOK + timedelta(seconds=1)
    assert owed.due_confirmations(session, soon)[0] == [first]
    session.commit()
    assert not notices.send_confirmation(session, held, BatchRefusals())


def test_a_mail_owed_longer_than_a_confirmation_link_lasts_is_given_up(session, lists):
    consent_id = sign_up(session, lists["news"].id, "old@example.org")
    ttl = timedelta(hours=get_settings().confirm_ttl_hours)
    assert owed.due_confirmations(session, utcnow() + ttl + timedelta(minutes=1)) == ([], [])
    session.commit()
    assert _due(session, ConsentRecord, consent_id) is None


def test_a_confirmed_or_erased_reader_is_owed_nothing(session, lists):
    confirmed = sign_up(session, lists["news"].id, "done@example.org")
    session.execute(
        update(ConsentRecord).where(ConsentRecord.id == confirmed).values(confirmed_at=utcnow())
    )
    session.commit()
    assert not notices.send_confirmation(session, confirmed, BatchRefusals())
    session.commit()
    assert _due(session, ConsentRecord, confirmed) is None
    assert session.scalars(select(NoticeMail)).all() == []


@pytest.mark.parametrize("again", [False, True], ids=["first", "signed-again"])
def test_a_signature_confirmation_lost_with_its_task_is_sent_by_the_sweep(
    session, smtp_sink, again
):
    petition = make_petition(session, require_confirmation=True)
    req = signing.SignRequest(name="Ola", email="signer@example.org")
    outcome = signing.sign(session, petition, req)
    session.commit()
    signature_id = outcome.confirm_signature_id
    assert signature_id is not None
    if again:  # the first mail went; the reader signs again past the resend interval
        assert petition_notices.send_signature_confirmation(session, signature_id, None)
        session.commit()
        assert _due(session, Signature, signature_id) is None
        from clarion import throttle

        throttle.forget(f"signature-confirm:{petition.id}:{throttle.mailbox_key(req.email)}")
        assert signing.sign(session, petition, req).confirm_signature_id == signature_id
        session.commit()
        smtp_sink.clear()
    due = _due(session, Signature, signature_id)
    assert due is not None
    assert owed.due_confirmations(session, due - timedelta(seconds=1)) == ([], [])
    assert owed.due_confirmations(session, due) == ([], [signature_id])
    session.commit()
    assert petition_notices.send_signature_confirmation(session, signature_id, BatchRefusals())
    session.commit()
    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["signer@example.org"]
    assert _due(session, Signature, signature_id) is None


def test_the_owners_are_told_on_the_dashboard_when_mails_were_late(session, lists, client, login):
    from tasks.mail import sweep_confirmations

    for email in ("a@example.org", "b@example.org"):
        sign_up(session, lists["news"].id, email)
    session.execute(update(ConsentRecord).values(mail_due_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert sweep_confirmations() == 2  # queued: no worker runs them here
    login(client, "owner")
    page = client.get("/admin/").get_data(as_text=True)
    assert "Confirmation mails were late and are being tried again" in page
    assert "2 mails queued again" in page
    assert "nothing needs to be resent by hand" in page
    refresh(session)
    [notice] = session.scalars(select(AdminNotice).where(AdminNotice.dismissed_at.is_(None)))
    assert notice.kind == owed.LATE_NOTICE and notice.count == 2
    # In the editor's language, the stored title too.
    session.execute(update(Editor).values(language="be"))
    session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    assert "Лісты з пацвярджэннем спазніліся і адпраўляюцца зноў" in page  # noqa: RUF001
    assert "2 лісты зноў у чарзе" in page  # noqa: RUF001
    assert "Confirmation mails were late" not in page


def test_a_sign_up_succeeds_while_the_broker_is_away_and_its_mail_stays_owed(
    client, session, lists, monkeypatch, caplog
):
    """Committed, then the publish fails: the reader is told to check their inbox (no error
    page to submit again), and the record keeps the mail owed for the sweep."""
    from tasks import app

    monkeypatch.setattr(app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(app, "_pool", None)  # the connections to the live broker
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    with caplog.at_level(logging.WARNING, logger="tasks.retrying"):
        response = client.post(
            "/subscribe", data={"email": "away@example.org", "lists": [str(lists["news"].id)]}
        )
    assert response.status_code == 200
    assert "waits for its sweep" in caplog.text
    assert "away@example.org" not in caplog.text
    refresh(session)
    [consent] = session.scalars(select(ConsentRecord)).all()
    assert consent.mail_due_at is not None and consent.confirmed_at is None


def test_an_erased_reader_or_signer_is_owed_no_confirmation_mail(session, lists, smtp_sink):
    from clarion.audience import erasure
    from clarion.models import Subscriber

    consent_id = sign_up(session, lists["news"].id, "gone@example.org")
    petition = make_petition(session, require_confirmation=True)
    signed = signing.sign(
        session, petition, signing.SignRequest(name="G", email="gone@example.org")
    )
    session.commit()
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "gone@example.org"))
    erasure.erase_reader(session, reader)
    session.commit()
    assert _due(session, ConsentRecord, consent_id) is None
    assert _due(session, Signature, signed.confirm_signature_id) is None
    assert owed.due_confirmations(session, utcnow() + timedelta(hours=1)) == ([], [])
    # A task queued before the erasure sends nothing either.
    refusals = BatchRefusals()
    assert not notices.send_confirmation(session, consent_id, refusals)
    assert not petition_notices.send_signature_confirmation(
        session, signed.confirm_signature_id, refusals
    )
    session.commit()
    assert smtp_sink.messages() == []
