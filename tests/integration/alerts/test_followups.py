"""Follow-ups: a draft to a sent alert's recipients who did not act, whose audience is fixed
when it starts (who acts before is skipped, who acts after still gets it) and never reaches
readers who left or are suppressed; its link to the origin; the rules' refusals; the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from markupsafe import escape as html_escape
from sqlalchemy import select

from clarion import jobqueue
from clarion.alerts import followups
from clarion.config import reset_settings
from clarion.db import utcnow
from clarion.delivery import dispatch, sending
from clarion.errors import InvalidTransition, ValidationError
from clarion.models import (
    Alert,
    AlertKind,
    AlertRole,
    AlertStatus,
    Click,
    Delivery,
    DeliveryStatus,
    FollowUp,
    MailingList,
    Petition,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from tests.faultsmtp import FaultServer
from tests.helpers import csrf_from, refresh
from tests.sendkit import InlineQueue

NAMES = ("ann", "bob", "cid", "dee", "eve", "fox")


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


def sent_alert(session, list_id: int, kind=AlertKind.NEWSLETTER, fields=None, **values) -> Alert:
    """An alert sent an hour ago to the list."""
    started = utcnow() - timedelta(hours=1)
    alert = Alert(
        kind=kind,
        name="Day 1000",
        subject="1,000 days",
        fields=fields or {"body_md": "Write to Ales: https://blog.example.org/write"},
        audience={"lists": [list_id]},
        status=AlertStatus.SENT,
        started_at=started,
        finished_at=started,
        frozen_at=started,
        frozen_links=["https://blog.example.org/write"],
        frozen_meta={"audience": {"lists": [list_id]}},
        **values,
    )
    session.add(alert)
    session.flush()
    return alert


@pytest.fixture
def world(session):
    """Six readers of the list: ann, bob, cid, dee (who left since), eve (suppressed since)
    were sent alert A; fox joined after it. Returns (list, petition, A, ids by name)."""
    ml = MailingList(slug="alerts", name="Alerts")
    petition = Petition(slug="free-ales", title="Free Ales")
    session.add_all([ml, petition])
    session.flush()
    ids = {}
    for name in NAMES:
        reader = Subscriber(uid=f"u-{name}", email=f"{name}@example.org", language="en")
        session.add(reader)
        session.flush()
        status = SubscriptionStatus.UNSUBSCRIBED if name == "dee" else SubscriptionStatus.SUBSCRIBED
        session.add(Subscription(subscriber_id=reader.id, list_id=ml.id, status=status))
        ids[name] = reader.id
    session.add(Suppression(email="eve@example.org", reason=SuppressionReason.MANUAL))
    origin = sent_alert(session, ml.id)
    for name in NAMES[:5]:
        session.add(Delivery(alert_id=origin.id, subscriber_id=ids[name],
                             status=DeliveryStatus.SENT, sent_at=origin.started_at))  # fmt: skip
    session.commit()
    return ml, petition, origin, ids


def send(session, alert: Alert, queue, server, act_after_ledger) -> set[str]:
    """Start the alert, write its ledger, let `act_after_ledger()` happen, then send; returns
    who got it, by name."""
    sending.start(session, alert)
    session.commit()
    dispatch.dispatch(alert.id)  # the ledger is written; its batches wait in the queue
    act_after_ledger()
    queue.drain(timeout=60)
    return {address.split("@")[0] for address in server.handler.counts}


def test_did_not_click_skips_who_clicked_before_the_start_and_keeps_who_clicks_after(
    session, world, queue, monkeypatch
):
    _ml, _petition, origin, ids = world
    # Ann clicked A; a link scanner opened Bob's copy, which is not Bob's click.
    session.add_all([
        Click(alert_id=origin.id, subscriber_id=ids["ann"], link_index=0),
        Click(alert_id=origin.id, subscriber_id=ids["bob"], link_index=0, suspected_scanner=True),
    ])  # fmt: skip
    session.commit()
    follow_up = followups.create(session, None, origin, "click")
    session.commit()
    assert follow_up.status == AlertStatus.DRAFT and follow_up.subject == origin.subject
    link = session.get(FollowUp, follow_up.id)
    assert (link.origin_id, link.rule) == (origin.id, "click")
    assert follow_up.audience["conditions"] == {
        "all": [{"type": "received", "alert": origin.id},
                {"not": {"type": "clicked", "alert": origin.id}}]
    }  # fmt: skip

    def cid_clicks_now():
        with_click = Click(alert_id=origin.id, subscriber_id=ids["cid"], link_index=0)
        session.add(with_click)
        session.commit()

    with FaultServer(keep=True) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        reset_settings()
        got = send(session, follow_up, queue, server, cid_clicks_now)
    # Never Dee (left), Eve (suppressed), Fox (not sent A); not Ann (clicked before).
    assert got == {"bob", "cid"}
    refresh(session)
    assert session.get(Alert, follow_up.id).status == AlertStatus.SENT


def test_did_not_sign_skips_who_signed_before_the_start_and_keeps_who_signs_after(
    session, world, queue, monkeypatch
):
    _ml, petition, origin, ids = world
    session.add(Signature(petition_id=petition.id, email="x@example.org", name="Ann",
                          subscriber_id=ids["ann"], confirmed_at=utcnow()))  # fmt: skip
    # Bob signed with his address alone (before he was known as a reader): he signed too.
    session.add(Signature(petition_id=petition.id, email="bob@example.org", name="Bob",
                          confirmed_at=utcnow()))  # fmt: skip
    session.commit()
    with pytest.raises(ValidationError) as no_petition:
        followups.create(session, None, origin, "sign")
    assert "petition" in no_petition.value.errors
    follow_up = followups.create(session, None, origin, "sign", petition_id=petition.id)
    session.commit()

    def cid_signs_now():
        session.add(Signature(petition_id=petition.id, email="cid@example.org", name="Cid",
                              subscriber_id=ids["cid"], confirmed_at=utcnow()))  # fmt: skip
        session.commit()

    with FaultServer(keep=True) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        reset_settings()
        got = send(session, follow_up, queue, server, cid_signs_now)
    assert got == {"cid"}


def test_a_petition_alert_follows_up_its_own_petition_by_default(session, world):
    ml, petition, _origin, _ids = world
    origin = sent_alert(
        session, ml.id, kind=AlertKind.PETITION,
        fields={"petition_id": str(petition.id), "petition_url": "https://x.example/p",
                "petition_title": "Free Ales", "why": "Because."},
    )  # fmt: skip
    assert followups.petition_of(origin) == petition.id
    follow_up = followups.create(session, None, origin, "sign")
    assert session.get(FollowUp, follow_up.id).target_id == petition.id
    assert follow_up.kind == AlertKind.PETITION


def test_did_not_share_names_the_hashtag_day_of_an_announcement(session, world):
    ml, _petition, origin, _ids = world
    day = sent_alert(session, ml.id, kind=AlertKind.HASHTAG_DAY, fields={"hashtags": "#x"})
    announcement = sent_alert(
        session, ml.id, kind=AlertKind.HASHTAG_DAY, fields={"hashtags": "#x"},
        parent_id=day.id, role=AlertRole.ANNOUNCEMENT.value,
    )  # fmt: skip
    follow_up = followups.create(session, None, announcement, "share")
    assert follow_up.audience["conditions"]["all"][1] == {
        "not": {"type": "shared", "hashtag_day": day.id}
    }
    with pytest.raises(ValidationError) as not_a_day:
        followups.create(session, None, origin, "share")
    assert "hashtag day" in not_a_day.value.errors["rule"]


def test_refusals_name_what_to_fix(session, world):
    ml, _petition, origin, _ids = world
    with pytest.raises(ValidationError) as bad:
        followups.create(session, None, origin, "open", delay_hours=0)
    assert set(bad.value.errors) == {"rule", "delay_hours"}
    with pytest.raises(ValidationError) as past:
        followups.create(session, None, origin, "click", delay_hours=1)  # it started 1 h ago
    assert "already passed" in past.value.errors["delay_hours"]
    draft = Alert(kind=AlertKind.NEWSLETTER, name="d", subject="d", fields={"body_md": "x"},
                  audience={"lists": [ml.id]})  # fmt: skip
    session.add(draft)
    session.flush()
    with pytest.raises(InvalidTransition):
        followups.create(session, None, draft, "click")


def test_a_delay_schedules_it_at_the_origins_start_plus_the_delay(session, world):
    _ml, _petition, origin, _ids = world
    follow_up = followups.create(session, None, origin, "click", delay_hours=24)
    session.commit()
    assert follow_up.status == AlertStatus.SCHEDULED
    assert follow_up.scheduled_at == origin.started_at + timedelta(hours=24)


def post_form(client, url, data):
    page = client.get("/admin/account").get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def test_the_alert_page_writes_a_follow_up_and_both_pages_show_the_link(
    client, session, login, world
):
    _ml, _petition, origin, _ids = world
    login(client, "editor")
    page = client.get(f"/admin/alerts/{origin.id}").get_data(as_text=True)
    assert 'id="follow-up-form"' in page
    url = f"/admin/alerts/{origin.id}/follow-up"
    refused = post_form(client, url, {"rule": "click", "delay_hours": "soon"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="delay_hours-error"' in html
    assert 'value="soon"' in html  # kept as typed
    assert session.scalar(select(FollowUp.alert_id)) is None

    done = post_form(client, url, {"rule": "click", "delay_hours": ""})
    assert done.status_code == 302
    refresh(session)
    link = session.scalar(select(FollowUp))
    assert done.headers["Location"].endswith(f"/admin/alerts/{link.alert_id}")
    child = client.get(f"/admin/alerts/{link.alert_id}").get_data(as_text=True)
    assert 'id="follow-up-of"' in child and html_escape(origin.name) in child
    parent = client.get(f"/admin/alerts/{origin.id}").get_data(as_text=True)
    assert f'href="/admin/alerts/{link.alert_id}"' in parent

    login(client, "viewer")
    viewer = client.get(f"/admin/alerts/{origin.id}").get_data(as_text=True)
    assert 'id="follow-up-form"' not in viewer
