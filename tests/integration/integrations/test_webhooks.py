"""Outbound webhooks over real HTTP: a loopback receiver checks every message against the
Standard Webhooks specification (tests/webhookreceiver.py, not Clarion's signing code); events
are written with the change that caused them; retries, disabling and a killed worker."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clarion import jobqueue, outbox
from clarion.actions import signing
from clarion.audience import erasure, subscribers
from clarion.bounces import policy
from clarion.bounces.numbers import load_policy
from clarion.db import utcnow
from clarion.delivery import sending
from clarion.delivery.refusals import Finding
from clarion.errors import ValidationError
from clarion.integrations import metrics, webhooks
from clarion.models import (
    AdminNotice,
    Alert,
    AlertKind,
    AlertStatus,
    BounceClass,
    ConsentRecord,
    Subscriber,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from tests.conftest import start_worker
from tests.helpers import refresh
from tests.integration.alertkit import make_petition
from tests.webhookreceiver import Receiver, running

ALL = list(outbox.EVENTS)


@pytest.fixture
def owner(make_editor):
    return make_editor("owner")[0]


def register(session, owner, receiver: Receiver, events=ALL) -> WebhookEndpoint:
    endpoint, secret = webhooks.create_endpoint(session, owner, receiver.url, list(events))
    session.commit()
    receiver.secrets.append(secret)
    return endpoint


def confirmed_reader(session, lists, email: str = "ada@example.org") -> Subscriber:
    """A reader who signed up and clicked the link, committed as the views do."""
    session.commit()  # a fresh snapshot: SQLite refuses a write from a stale one
    outcome = subscribers.subscribe(
        session, subscribers.SubscribeRequest(email=email, list_ids=[lists["alerts"].id])
    )
    session.commit()
    consent = session.get(ConsentRecord, outcome.consent_id)
    result = subscribers.confirm(session, subscribers.confirm_token(consent), "192.0.2.1")
    session.commit()
    return result.subscriber


def deliveries(session) -> list[WebhookDelivery]:
    refresh(session)
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_confirmation_is_delivered_signed_as_the_specification_says(
    session, loopback, published, owner, lists
):
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
        reader = confirmed_reader(session, lists)
        [row] = deliveries(session)
        assert (outbox.BATCH_TASK, (endpoint.id,), None) in published  # after the commit
        assert webhooks.deliver(row.id) == "delivered"
    [got] = receiver.received
    assert got.verified_by == receiver.secrets
    assert got.id.startswith("msg_") and got.headers["content-type"] == "application/json"
    assert got.json["type"] == "subscriber.confirmed"
    assert got.json["data"] == {
        "subscriber_id": reader.id,
        "list_ids": [lists["alerts"].id],
        "email": "ada@example.org",
    }
    row = deliveries(session)[0]
    assert (row.state, row.attempts, row.last_status) == ("delivered", 1, 200)


def test_a_tampered_body_or_a_wrong_secret_does_not_verify(
    session, loopback, published, owner, lists
):
    """The receiver is strict: the check above would catch a sender signing the wrong thing."""
    from tests.webhookreceiver import verify

    with running(Receiver()) as receiver:
        register(session, owner, receiver)
        confirmed_reader(session, lists)
        webhooks.deliver(deliveries(session)[0].id)
    got = receiver.received[0]
    assert verify(receiver.secrets[0], got.headers, got.body)
    assert not verify(receiver.secrets[0], got.headers, got.body.replace(b"ada", b"eve"))
    assert not verify(webhooks.new_secret(), got.headers, got.body)


def test_a_failed_attempt_is_retried_with_backoff_and_the_same_webhook_id(
    session, loopback, published, owner, lists
):
    with running(Receiver(script=[500])) as receiver:
        register(session, owner, receiver)
        confirmed_reader(session, lists)
        [row] = deliveries(session)
        now = utcnow()
        assert webhooks.deliver(row.id, now=now) == "pending"
        row = deliveries(session)[0]
        assert (row.attempts, row.last_status, row.last_error) == (1, 500, "answered 500")
        assert row.next_attempt_at == now + timedelta(seconds=webhooks.FIRST_DELAY)
        assert (outbox.DELIVER_TASK, (row.id,), webhooks.FIRST_DELAY) in published
        # Not due yet: a task arriving early does nothing.
        assert webhooks.deliver(row.id, now=now + timedelta(seconds=5)) == "skipped"
        later = now + timedelta(seconds=webhooks.FIRST_DELAY)
        assert webhooks.deliver(row.id, now=later) == "delivered"
    first, second = receiver.received
    assert first.id == second.id and first.body == second.body
    assert first.verified_by and second.verified_by
    assert deliveries(session)[0].attempts == 2
    figures = metrics.collect().decode()
    assert 'clarion_webhook_deliveries{result="delivered"} 1.0' in figures


def test_backoff_doubles_and_spans_a_day():
    delays = [webhooks.backoff(n) for n in range(1, 20)]
    assert delays[:3] == [30, 60, 120] and max(delays) == webhooks.MAX_DELAY
    assert sum(delays) >= 24 * 3600


def test_an_endpoint_failing_for_24_hours_is_disabled_with_a_notice(
    session, loopback, published, owner, lists
):
    with running(Receiver(script=[500] * 10)) as receiver:
        endpoint = register(session, owner, receiver)
        confirmed_reader(session, lists)
        [row] = deliveries(session)
        start = utcnow()
        assert webhooks.deliver(row.id, now=start) == "pending"
        hours_later = start + timedelta(hours=23)
        assert webhooks.deliver(row.id, now=hours_later) == "pending"
        refresh(session)
        assert session.get(WebhookEndpoint, endpoint.id).enabled
        day_later = start + timedelta(hours=24, minutes=1)
        assert webhooks.deliver(row.id, now=day_later) == "failed"
    refresh(session)
    endpoint = session.get(WebhookEndpoint, endpoint.id)
    assert not endpoint.enabled and "answered 500" in endpoint.disabled_reason
    notice = session.scalar(select(AdminNotice).where(AdminNotice.kind == webhooks.NOTICE_KIND))
    assert notice is not None and receiver.url in notice.title
    # Disabled: later events are not even recorded for it.
    confirmed_reader(session, lists, "bob@example.org")
    assert len(deliveries(session)) == 1


def test_a_success_in_between_starts_the_24_hours_again(session, loopback, published, owner, lists):
    with running(Receiver(script=[500, 200, 500])) as receiver:
        endpoint = register(session, owner, receiver)
        confirmed_reader(session, lists)
        start = utcnow()
        first = deliveries(session)[0].id
        webhooks.deliver(first, now=start)
        webhooks.deliver(first, now=start + timedelta(hours=12))
        confirmed_reader(session, lists, "bob@example.org")
        second = deliveries(session)[1].id
        webhooks.deliver(second, now=start + timedelta(hours=25))
    refresh(session)
    assert session.get(WebhookEndpoint, endpoint.id).enabled


def test_during_a_rotation_both_secrets_sign(session, loopback, published, owner, lists):
    with running(Receiver()) as receiver:
        endpoint = register(session, owner, receiver)
        new = webhooks.rotate_secret(session, owner, endpoint)
        session.commit()
        receiver.secrets.append(new)
        confirmed_reader(session, lists)
        webhooks.deliver(deliveries(session)[0].id)
    [got] = receiver.received
    assert got.verified_by == receiver.secrets  # the old secret and the new
    assert len(got.headers["webhook-signature"].split(" ")) == 2


def test_the_event_rolls_back_with_the_change(session, loopback, published, owner, lists):
    with running(Receiver()) as receiver:
        register(session, owner, receiver)
    outcome = subscribers.subscribe(
        session,
        subscribers.SubscribeRequest(email="ada@example.org", list_ids=[lists["alerts"].id]),
    )
    session.commit()
    consent = session.get(ConsentRecord, outcome.consent_id)
    subscribers.confirm(session, subscribers.confirm_token(consent), None)
    session.rollback()  # the request failed after confirming: no confirmation, no event
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert not [p for p in published if p[0] == outbox.DELIVER_TASK]


def test_nothing_is_stored_when_no_endpoint_wants_the_event(
    session, loopback, published, owner, lists
):
    with running(Receiver()) as receiver:
        register(session, owner, receiver, events=["petition.signed"])
    confirmed_reader(session, lists)
    assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_a_lost_publish_is_found_by_the_sweep(session, loopback, owner, lists):
    def broker_down(name, args, countdown):
        raise jobqueue.QueueUnavailable("down")

    previous = jobqueue.set_backend(broker_down)
    try:
        with running(Receiver()) as receiver:
            endpoint = register(session, owner, receiver)
        confirmed_reader(session, lists)  # committed although the publishing failed
    finally:
        jobqueue.set_backend(previous)
    [row] = deliveries(session)
    queued: list = []
    previous = jobqueue.set_backend(lambda name, args, countdown: queued.append(args))
    try:
        assert webhooks.sweep() == []  # the publish after commit still has its grace
        assert webhooks.sweep(now=utcnow() + webhooks.SWEEP_GRACE) == [endpoint.id]
    finally:
        jobqueue.set_backend(previous)
    assert queued == [(endpoint.id,)] and row.state == "pending"


def test_loopback_endpoints_are_refused_unless_the_operator_allows_them(session, owner):
    with pytest.raises(ValidationError) as refused:
        webhooks.create_endpoint(session, owner, "http://127.0.0.1:9/hooks", ALL)
    assert "CLARION_ALLOW_PRIVATE_FETCH" in refused.value.errors["url"]
    with pytest.raises(ValidationError) as refused:
        webhooks.create_endpoint(session, owner, "ftp://example.org/", ["nope"])
    assert set(refused.value.errors) == {"url", "events"}


def test_only_owners_register_endpoints(session, loopback, make_editor):
    from clarion.errors import Forbidden

    editor = make_editor("editor")[0]
    with pytest.raises(Forbidden):
        webhooks.create_endpoint(session, editor, "http://127.0.0.1:9/hooks", ALL)


def test_each_domain_change_records_its_event(session, loopback, published, owner, lists):
    with running(Receiver()) as receiver:
        register(session, owner, receiver)
    reader = confirmed_reader(session, lists)
    subscribers.unsubscribe(session, reader, None, source="test")
    session.commit()
    other = confirmed_reader(session, lists, "bob@example.org")
    finding = Finding(BounceClass.HARD, "5.1.1", "no such user", other.email, "smtp", other.id)
    policy.act(session, finding, load_policy(session))
    third = confirmed_reader(session, lists, "cy@example.org")
    complaint = Finding(BounceClass.COMPLAINT, "", "abuse", third.email, "ses", third.id)
    policy.act(session, complaint, load_policy(session))
    session.commit()
    petition = make_petition(session)
    signing.sign(session, petition, signing.SignRequest(name="Dee", email="dee@example.org"))
    session.commit()
    alert = Alert(kind=AlertKind.NEWSLETTER, name="News", subject="News", status=AlertStatus.DRAFT)
    session.add(alert)
    session.commit()
    sending.transition(session, alert, "start", started_at=utcnow())
    sending.transition(session, alert, "finish", finished_at=utcnow())
    session.commit()
    erasure.erase_reader(session, session.get(Subscriber, reader.id))
    session.commit()
    rows = list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
    assert {e.type for e in rows} == set(outbox.EVENTS)
    left = [e.payload["reason"] for e in rows if e.type == "subscriber.unsubscribed"]
    assert left == ["unsubscribe", "complaint"]  # a complaint withdraws from every list too
    events = {e.type: e.payload for e in rows}
    assert events["subscriber.bounced"] == {
        "subscriber_id": other.id,
        "alert_id": None,
        "bounce_id": events["subscriber.bounced"]["bounce_id"],
        "classification": "hard",
    }
    assert events["subscriber.complained"]["subscriber_id"] == third.id
    assert events["petition.signed"]["email"] == "dee@example.org"
    assert events["alert.started"]["status"] == "sending"
    assert events["alert.finished"]["status"] == "sent"
    erased = events["subscriber.erased"]
    assert set(erased) == {"subscriber_id", "email_hash"} and "@" not in erased["email_hash"]


def test_erasure_takes_the_address_out_of_events_not_yet_sent(
    session, loopback, published, owner, lists
):
    with running(Receiver()) as receiver:
        register(session, owner, receiver)
    reader = confirmed_reader(session, lists)
    erasure.erase_reader(session, reader)
    session.commit()
    payloads = [e.payload for e in session.scalars(select(WebhookEvent))]
    assert payloads and not any("ada" in str(p) for p in payloads)


def test_a_worker_killed_mid_delivery_delivers_later_with_the_same_webhook_id(
    session, loopback, owner, lists, backend, tmp_path
):
    import tasks  # here, not at collection: importing it binds Celery to the current settings

    queue = f"webhooks-{tmp_path.name}"
    celery = tasks.make_celery(tasks.get_settings())

    def publish(name, args, countdown):
        celery.send_task(name, args=list(args), countdown=countdown, queue=queue)

    receiver = Receiver(hold=threading.Event())
    with running(receiver):
        endpoint = register(session, owner, receiver)
        victim = start_worker(
            backend,
            tmp_path / "victim.log",
            queues=queue,
            concurrency=1,
            extra_env={"CLARION_ALLOW_PRIVATE_FETCH": "127.0.0.1/32"},
        )
        previous = jobqueue.set_backend(publish)
        try:
            confirmed_reader(session, lists)  # the event commits with the confirmation
            assert receiver.arrived.wait(60), victim.log.read_text()[-2000:]
            victim.kill()  # mid-delivery: the request was sent, no answer was recorded
        finally:
            jobqueue.set_backend(previous)
            victim.stop()
        receiver.hold.set()
        [row] = deliveries(session)
        assert row.state == "pending" and row.attempts == 0 and row.claimed_until is not None
        # The claim lapses; the sweep hands it out again and it is delivered.
        later = row.claimed_until + webhooks.SWEEP_GRACE
        queued: list = []
        previous = jobqueue.set_backend(lambda name, args, countdown: queued.append(args))
        try:
            assert webhooks.sweep(now=later) == [endpoint.id]
        finally:
            jobqueue.set_backend(previous)
        receiver.hold = None
        assert webhooks.deliver(row.id, now=later) == "delivered"
    first, second = receiver.received
    assert first.id == second.id and second.verified_by
    assert deliveries(session)[0].state == "delivered"


def test_many_readers_leaving_at_once_record_one_event_each_for_the_endpoints_that_want_it(
    session, loopback, published, owner, lists
):
    with running(Receiver()) as wants, running(Receiver()) as other:
        register(session, owner, wants, ["subscriber.unsubscribed"])
        register(session, owner, other, ["petition.signed"])
    readers = [confirmed_reader(session, lists, f"r{n}@example.org") for n in range(3)]
    published.clear()
    list_id = lists["alerts"].id
    ids = [r.id for r in readers]
    left = subscribers.unsubscribe_many(session, ids, [list_id], action="inactive")
    assert left == {sid: [list_id] for sid in ids}
    assert published == []  # nothing goes out before the commit
    session.commit()
    events = session.scalars(select(WebhookEvent).where(
        WebhookEvent.type == "subscriber.unsubscribed")).all()  # fmt: skip
    assert sorted(e.payload["subscriber_id"] for e in events) == sorted(ids)
    assert {(e.payload["reason"], tuple(e.payload["list_ids"])) for e in events} == {
        ("inactive", (list_id,))
    }
    assert len({e.uid for e in events}) == 3  # each its own stable webhook-id
    rows = deliveries(session)
    assert sorted(r.event_id for r in rows) == sorted(e.id for e in events)
    wanting = session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.url == wants.url))
    assert {r.endpoint_id for r in rows} == {wanting}
    assert published == [(outbox.BATCH_TASK, (wanting,), None)]  # one wake-up, not one a reader
    # Readers who have left already leave nothing more to tell.
    assert subscribers.unsubscribe_many(session, ids, [list_id], action="inactive") == {}
    session.commit()
    assert len(deliveries(session)) == 3
