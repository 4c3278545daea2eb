"""Retention: IP addresses and browser names dropped, per-reader clicks folded into per-link
counts, unconfirmed sign-ups forgotten; run from beat and shown to owners."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clarion import retention
from clarion.actions import stats
from clarion.db import session_scope, utcnow
from clarion.models import (
    Click,
    ClickCount,
    ConsentRecord,
    NoticeMail,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from tests.helpers import refresh
from tests.integration.alertkit import frozen_alert, make_readers


def _signup(session, email: str, age: timedelta, lists, *, confirmed: bool = False) -> Subscriber:
    when = utcnow() - age
    reader = Subscriber(email=email, created_at=when)
    session.add(reader)
    session.flush()
    status = SubscriptionStatus.SUBSCRIBED if confirmed else SubscriptionStatus.PENDING
    session.add_all(
        [
            Subscription(subscriber_id=reader.id, list_id=lists["alerts"].id, status=status),
            ConsentRecord(
                subscriber_id=reader.id,
                action="subscribe",
                list_ids=[lists["alerts"].id],
                created_at=when,
                ip="198.51.100.7",
                user_agent="Mozilla/5.0 (X11; Linux x86_64)",
                confirmed_at=when if confirmed else None,
                confirm_ip="198.51.100.8" if confirmed else None,
            ),
        ]
    )
    session.commit()
    return reader


def test_ip_addresses_and_user_agents_go_after_the_retention_period(session, lists, settings):
    old = _signup(session, "old@example.org", timedelta(days=31), lists, confirmed=True)
    new = _signup(session, "new@example.org", timedelta(days=29), lists, confirmed=True)
    with session_scope() as s:
        assert retention.run(s)["network_data_dropped"] == 1
    refresh(session)
    kept = {
        c.subscriber_id: (c.ip, c.user_agent, c.confirm_ip)
        for c in session.scalars(select(ConsentRecord))
    }
    assert kept[old.id] == (None, None, None)
    assert kept[new.id] == ("198.51.100.7", "Mozilla/5.0 (X11; Linux x86_64)", "198.51.100.8")


def test_unconfirmed_sign_ups_are_forgotten_after_30_days(session, lists):
    ids = [
        _signup(session, "stale@example.org", timedelta(days=31), lists).id,
        _signup(session, "fresh@example.org", timedelta(days=5), lists).id,
        _signup(session, "kept@example.org", timedelta(days=90), lists, confirmed=True).id,
    ]
    with session_scope() as s:
        assert retention.run(s)["forgotten_subscribers"] == 1
    refresh(session)
    left = set(session.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids))))
    assert left == {"fresh@example.org", "kept@example.org"}
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 2


def test_where_transactional_mails_went_is_forgotten_after_30_days(session):
    session.add_all(
        [
            NoticeMail(
                kind="confirm", email="old@example.org", created_at=utcnow() - timedelta(days=31)
            ),
            NoticeMail(kind="confirm", email="new@example.org", created_at=utcnow()),
        ]
    )
    session.commit()
    with session_scope() as s:
        assert retention.run(s)["notice_mails_purged"] == 1
    refresh(session)
    assert list(session.scalars(select(NoticeMail.email))) == ["new@example.org"]


def test_webhook_events_and_their_log_are_forgotten_after_30_days(session):
    endpoint = WebhookEndpoint(url="https://crm.example.net/hooks", events=[], secret="x")
    session.add(endpoint)
    session.flush()
    for uid, age in (("msg_old", timedelta(days=31)), ("msg_new", timedelta(0))):
        event = WebhookEvent(
            uid=uid,
            type="petition.signed",
            payload={"email": f"{uid}@example.org"},
            created_at=utcnow() - age,
        )
        session.add(event)
        session.flush()
        session.add(WebhookDelivery(event_id=event.id, endpoint_id=endpoint.id, state="delivered"))
    session.commit()
    with session_scope() as s:
        assert retention.run(s)["webhook_events_purged"] == 1
    refresh(session)
    assert list(session.scalars(select(WebhookEvent.uid))) == ["msg_new"]
    assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


@pytest.fixture
def clicked(session, settings):
    """An alert with two links; three readers clicked long ago, one recently."""
    people = make_readers(session, 4)
    alert, deliveries = frozen_alert(
        session, ["https://blog.example.org/a", "https://blog.example.org/b"], people
    )
    long_ago = utcnow() - timedelta(days=settings.retain_clicks_days + 1)
    rows = [
        (deliveries[0], 0, long_ago, False),
        (deliveries[0], 0, long_ago, False),
        (deliveries[1], 0, long_ago, False),
        (deliveries[2], 1, long_ago, True),
        (deliveries[3], 1, utcnow(), False),
    ]
    session.add_all(
        Click(
            alert_id=alert.id,
            delivery_id=d.id,
            subscriber_id=d.subscriber_id,
            link_index=n,
            clicked_at=at,
            suspected_scanner=scanner,
        )
        for d, n, at, scanner in rows
    )
    session.commit()
    return alert


def test_old_clicks_become_per_link_counts_and_the_figures_stay(session, clicked):
    before = stats.alert_stats(session, clicked)
    with session_scope() as s:
        assert retention.run(s)["clicks_aggregated"] == 4
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Click)) == 1  # the recent one
    counts = {
        c.link_index: (c.clicks, c.unique_clicks, c.scanner_clicks)
        for c in session.scalars(select(ClickCount))
    }
    assert counts == {0: (3, 2, 0), 1: (0, 0, 1)}
    after = stats.alert_stats(session, clicked)
    assert (after.total_clicks, after.scanner_clicks) == (
        before.total_clicks,
        before.scanner_clicks,
    )
    assert [(link.total, link.unique, link.scanner) for link in after.links] == [
        (link.total, link.unique, link.scanner) for link in before.links
    ]
    with session_scope() as s:  # a second run finds nothing more to fold
        assert retention.run(s)["clicks_aggregated"] == 0
    refresh(session)
    assert session.scalar(select(ClickCount.clicks).where(ClickCount.link_index == 0)) == 3


def test_retention_runs_from_beat_and_owners_see_the_policy_and_last_run(
    client, session, login, settings
):
    from tasks import beat_schedule

    assert beat_schedule(settings)["purge-expired"]["task"] == "tasks.maintenance.purge_expired"
    login(client, "owner")
    page = client.get("/admin/settings/privacy").text
    assert "has not run yet" in page and f"{settings.retain_ip_days} days" in page
    with session_scope() as s:
        retention.run(s)
    page = client.get("/admin/settings/privacy").text
    assert "has not run yet" not in page and "clicks aggregated: 0" in page


def test_editors_do_not_see_the_privacy_settings(client, login):
    login(client, "editor")
    assert client.get("/admin/settings/privacy").status_code == 403
