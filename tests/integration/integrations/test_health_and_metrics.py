"""/healthz, /readyz and /metrics: what load balancers and Prometheus see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from clarion.config import reset_settings
from clarion.db import get_engine, utcnow
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Bounce,
    BounceClass,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Subscriber,
)
from clarion.redisconn import get_redis, reset_redis
from tests.helpers import sign_up
from tests.services import RedisServer

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def private_redis(settings, monkeypatch) -> Iterator[RedisServer]:
    """This process pointed at a Redis of its own, which the test may stop."""
    server = RedisServer().start()
    monkeypatch.setenv("CLARION_REDIS_URL", server.url)
    reset_settings()
    reset_redis()
    yield server
    server.cleanup()
    reset_redis()
    reset_settings()


def test_healthz_answers_without_looking_further(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_is_ready_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "ok",
        "broker": "ok",
    }


def test_readyz_fails_with_what_failed_when_redis_is_down(private_redis):
    from webapp import create_app

    client = create_app(TESTING=True).test_client()
    assert client.get("/readyz").status_code == 200
    private_redis.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"] == checks["migrations"] == "ok"
    assert "Connection" in checks["redis"] and "Connection" in checks["broker"]
    assert response.json["status"] == "not ready"


def test_readyz_fails_when_the_schema_is_behind_the_code(client, settings):
    engine = get_engine(settings.database_url)
    with engine.begin() as conn:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0007_languages'"))
    try:
        response = client.get("/readyz")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert response.status_code == 503
    assert "run clarion db upgrade" in response.json["checks"]["migrations"]


def test_metrics_count_the_ledger_bounces_queues_and_click_buffer(private_redis, session):
    """On a Redis of its own: the session's worker would consume the queue being counted."""
    from webapp import create_app

    client = create_app(TESTING=True).test_client()
    readers = [Subscriber(email=f"m{i}@example.org") for i in range(3)]
    alert = Alert(kind=AlertKind.NEWSLETTER, name="M", subject="M", status=AlertStatus.SENT)
    session.add_all([*readers, alert])
    session.flush()
    statuses = (DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.FAILED)
    for reader, status in zip(readers, statuses, strict=True):
        session.add(Delivery(alert_id=alert.id, subscriber_id=reader.id, status=status))
    session.add(Bounce(source="smtp", email="m@example.org", classification=BounceClass.COMPLAINT))
    session.commit()
    get_redis().rpush("bulk", b"task-1", b"task-2")
    get_redis().xadd("clarion:events", {"k": "c"})
    body = client.get("/metrics").text
    assert 'clarion_messages{result="sent"} 2.0' in body
    assert 'clarion_messages{result="failed"} 1.0' in body
    assert 'clarion_bounces{class="complaint"} 1.0' in body
    assert 'clarion_queue_depth{queue="bulk"} 2.0' in body
    assert "clarion_click_buffer_length 1.0" in body
    assert "clarion_send_rate 0.0" in body
    assert 'clarion_confirmation_mails_owed{kind="signup"} 0.0' in body
    assert "clarion_confirmation_mail_oldest_seconds 0.0" in body


def test_metrics_count_the_confirmation_mails_still_owed(private_redis, session, lists):
    """A sign-up whose mail has not gone yet counts, with its age; once sent, it does not."""
    from clarion.audience import notices
    from clarion.bounces.refusals import BatchRefusals
    from webapp import create_app

    client = create_app(TESTING=True).test_client()
    consent_id = sign_up(session, lists["news"].id, "owed@example.org")
    session.execute(
        update(ConsentRecord)
        .where(ConsentRecord.id == consent_id)
        .values(created_at=utcnow() - timedelta(hours=2))
    )
    session.commit()
    body = client.get("/metrics").text
    assert 'clarion_confirmation_mails_owed{kind="signup"} 1.0' in body
    assert 'clarion_confirmation_mails_owed{kind="signature"} 0.0' in body
    age = float(re.search(r"^clarion_confirmation_mail_oldest_seconds (\S+)$", body, re.M)[1])
    assert 7200 <= age < 7300
    assert notices.send_confirmation(session, consent_id, BatchRefusals())
    session.commit()
    body = client.get("/metrics").text
    assert 'clarion_confirmation_mails_owed{kind="signup"} 0.0' in body
    assert "clarion_confirmation_mail_oldest_seconds 0.0" in body


def test_batch_durations_from_every_worker_make_one_histogram(client):
    from clarion.delivery import rates

    for seconds in (0.7, 3.0, 400.0):
        rates.record_batch(seconds)
    body = client.get("/metrics").text
    assert 'clarion_batch_duration_seconds_bucket{le="0.5"} 0.0' in body
    assert 'clarion_batch_duration_seconds_bucket{le="1.0"} 1.0' in body
    assert 'clarion_batch_duration_seconds_bucket{le="5.0"} 2.0' in body
    assert 'clarion_batch_duration_seconds_bucket{le="+Inf"} 3.0' in body
    assert "clarion_batch_duration_seconds_count 3.0" in body
    assert "clarion_batch_duration_seconds_sum 403.7" in body


def test_metrics_need_loopback_or_the_token(settings, monkeypatch):
    from webapp import create_app

    client = create_app(settings, TESTING=True).test_client()
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 403
    monkeypatch.setenv("CLARION_METRICS_TOKEN", "scrape-secret-0123456789")
    reset_settings()
    from clarion.config import get_settings

    client = create_app(get_settings(), TESTING=True).test_client()
    assert client.get("/metrics").status_code == 403  # with a token, loopback is not enough
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", headers=wrong, environ_base=ELSEWHERE).status_code == 403
    right = {"Authorization": "Bearer scrape-secret-0123456789"}
    assert client.get("/metrics", headers=right, environ_base=ELSEWHERE).status_code == 200


def test_each_batch_a_send_runs_is_timed(session, settings, monkeypatch):
    from clarion import jobqueue
    from clarion.config import get_settings
    from clarion.delivery import dispatch, rates, sending
    from tests.faultsmtp import FaultServer
    from tests.sendkit import InlineQueue, make_alert, make_audience, make_list

    queue = InlineQueue()
    previous = jobqueue.set_backend(queue)
    try:
        alerts = make_list(session)
        make_audience(session, alerts, 7)
        with FaultServer() as server:
            monkeypatch.setenv("CLARION_SMTP_URL", server.url)
            monkeypatch.setenv("CLARION_BATCH_SIZE", "3")
            reset_settings()
            assert get_settings().batch_size == 3
            alert = make_alert(session, [alerts])
            sending.start(session, alert)
            session.commit()
            dispatch.enqueue_dispatch(alert.id)
            queue.drain(timeout=60)
    finally:
        jobqueue.set_backend(previous)
    buckets, total = rates.batch_seconds()
    assert dict(buckets)["+Inf"] == 3.0 and total > 0  # 7 readers, 3 a batch
