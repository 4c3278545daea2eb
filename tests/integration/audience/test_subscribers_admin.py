"""Subscribers in the admin: search, filters, keyset pages, detail, deletion, lists and tags."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from clarion.audience import directory
from clarion.models import (
    AuditEvent,
    Bounce,
    BounceClass,
    ConsentRecord,
    MailingList,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
)
from tests.helpers import csrf_from, refresh


@pytest.fixture
def crowd(session, lists):
    """130 readers: every third on alerts (subscribed), every fifth pending on news, names mixed."""
    tag = Tag(name="minsk")
    session.add(tag)
    people = []
    for i in range(130):
        name = ["Алесь Бяляцкі", "Maria Kalesnikava", "Ihar Losik", None][i % 4]
        people.append(Subscriber(email=f"r{i:03d}@example.org", name=name))
    session.add_all(people)
    session.flush()
    for i, s in enumerate(people):
        if i % 3 == 0:
            session.add(
                Subscription(
                    subscriber_id=s.id,
                    list_id=lists["alerts"].id,
                    status=SubscriptionStatus.SUBSCRIBED,
                )
            )
        if i % 5 == 0:
            session.add(
                Subscription(
                    subscriber_id=s.id, list_id=lists["news"].id, status=SubscriptionStatus.PENDING
                )
            )
        if i % 7 == 0:
            session.add(SubscriberTag(subscriber_id=s.id, tag_id=tag.id))
    session.add(Suppression(email="r001@example.org", reason=SuppressionReason.HARD_BOUNCE))
    session.commit()
    return {"people": people, "tag": tag}


def walk(session, f):
    """Every page forwards, then backwards; returns the ids seen each way."""
    forward, after = [], None
    while True:
        page = directory.page(session, f, after=after)
        forward.extend(r.subscriber.id for r in page.items)
        if page.after is None:
            break
        after = page.after
    backward, before = [r.subscriber.id for r in page.items], page.before
    while before is not None:
        page = directory.page(session, f, before=before)
        backward[:0] = [r.subscriber.id for r in page.items]
        before = page.before
    return forward, backward


def walk_rows(session, f):
    """The same walk through pages of two columns (as the API reads them): (id, email) rows."""
    forward, after = [], None
    while True:
        page = directory.subscribers_page(
            session, f, after=after, columns=(Subscriber.id, Subscriber.email)
        )
        forward.extend(tuple(r) for r in page.items)
        if page.after is None:
            break
        after = page.after
    backward, before = [tuple(r) for r in page.items], page.before
    while before is not None:
        page = directory.subscribers_page(
            session, f, before=before, columns=(Subscriber.id, Subscriber.email)
        )
        backward[:0] = [tuple(r) for r in page.items]
        before = page.before
    return forward, backward


@pytest.mark.parametrize(
    ("make_filter", "expected"),
    [
        (lambda c, ml: directory.SubscriberFilter(), lambda i: True),
        (lambda c, ml: directory.SubscriberFilter(list_id=ml["alerts"].id), lambda i: i % 3 == 0),
        (
            lambda c, ml: directory.SubscriberFilter(list_id=ml["news"].id, status="pending"),
            lambda i: i % 5 == 0,
        ),
        (lambda c, ml: directory.SubscriberFilter(status="subscribed"), lambda i: i % 3 == 0),
        (lambda c, ml: directory.SubscriberFilter(tag_id=c["tag"].id), lambda i: i % 7 == 0),
        (
            lambda c, ml: directory.SubscriberFilter(list_id=ml["alerts"].id, tag_id=c["tag"].id),
            lambda i: i % 21 == 0,
        ),
        (lambda c, ml: directory.SubscriberFilter(q="бяляцкі"), lambda i: i % 4 == 0),
        (lambda c, ml: directory.SubscriberFilter(q="KALES"), lambda i: i % 4 == 1),
        (lambda c, ml: directory.SubscriberFilter(q="r01"), lambda i: 10 <= i <= 19),
        (lambda c, ml: directory.SubscriberFilter(q="r042@example.org"), lambda i: i == 42),
        (lambda c, ml: directory.SubscriberFilter(q="100%_"), lambda i: False),
        (lambda c, ml: directory.SubscriberFilter(status="suppressed"), lambda i: i == 1),
    ],
)
def test_filters_and_keyset_pages_see_each_match_exactly_once(
    session, crowd, lists, make_filter, expected
):
    f = make_filter(crowd, lists)
    forward, backward = walk(session, f)
    wanted = sorted((s.id for i, s in enumerate(crowd["people"]) if expected(i)), reverse=True)
    assert forward == wanted
    assert backward == wanted
    emails = {s.id: s.email for s in crowd["people"]}
    rows_forward, rows_backward = walk_rows(session, f)
    assert rows_forward == rows_backward == [(i, emails[i]) for i in wanted]


def test_list_page_filters_and_links(client, login, crowd, lists):
    login(client, "viewer")
    html = client.get(f"/admin/subscribers?list={lists['alerts'].id}&status=subscribed").get_data(
        as_text=True
    )
    assert html.count('href="/admin/subscribers/') == 44  # 0, 3, ..., 129
    assert "Older" not in html
    html = client.get("/admin/subscribers").get_data(as_text=True)
    assert html.count('href="/admin/subscribers/') == 50
    older = re.search(r'href="(/admin/subscribers\?after=\d+)"', html)[1]
    second = client.get(older).get_data(as_text=True)
    assert "r079@example.org" in second and "Newer" in second
    assert "OFFSET" not in str(directory.filtered(directory.SubscriberFilter())[0])


def test_detail_shows_consent_subscriptions_deliveries_and_bounces(
    client, session, login, subscribed, lists
):
    session.add(
        ConsentRecord(
            subscriber_id=subscribed.id,
            action="subscribe",
            list_ids=[lists["alerts"].id],
            consent_text="I agree",
            consent_version="1",
            ip="192.0.2.7",
        )
    )
    session.add(
        Bounce(
            source="smtp",
            subscriber_id=subscribed.id,
            email=subscribed.email,
            classification=BounceClass.SOFT,
            status_code="4.2.2",
            reason="mailbox full",
        )
    )
    session.commit()
    login(client, "viewer")
    html = client.get(f"/admin/subscribers/{subscribed.id}").get_data(as_text=True)
    assert "I agree" in html and "192.0.2.7" in html and "Urgent alerts" in html
    assert "mailbox full" in html and "4.2.2" in html
    assert "Delete this subscriber" not in html  # viewers do not see owner actions


def test_owner_deletes_a_subscriber_audited_without_the_address(client, session, login, subscribed):
    reader_id = subscribed.id
    login(client, "owner")
    page = client.get(f"/admin/subscribers/{reader_id}").get_data(as_text=True)
    response = client.post(
        f"/admin/subscribers/{reader_id}/delete", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302
    refresh(session)
    assert session.get(Subscriber, reader_id) is None
    assert session.scalar(select(func.count()).select_from(Subscription)) == 0
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "subscriber.delete"))
    assert event.target == f"subscriber:{reader_id}"
    assert "reader@example.org" not in str(event.detail) and len(event.detail["email_hash"]) == 32


def test_owner_lifts_a_suppression(client, session, login, subscribed):
    session.add(
        Suppression(email=subscribed.email, reason=SuppressionReason.COMPLAINT, detail="ARF")
    )
    session.commit()
    login(client, "owner")
    page = client.get(f"/admin/subscribers/{subscribed.id}").get_data(as_text=True)
    assert "Suppressed" in page and "complaint" in page
    client.post(
        f"/admin/subscribers/{subscribed.id}/lift-suppression", data={"csrf_token": csrf_from(page)}
    )
    refresh(session)
    assert session.scalar(select(Suppression)) is None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "suppression.lift"))
    assert event.detail["reason"] == "complaint"


def test_bulk_tag_from_a_filter_then_detach(client, session, login, crowd, lists):
    login(client, "editor")
    page = client.get(f"/admin/subscribers?list={lists['alerts'].id}").get_data(as_text=True)
    form = {
        "csrf_token": csrf_from(page),
        "list": str(lists["alerts"].id),
        "tag_name": "Vilnius",
        "operation": "attach",
    }
    client.post("/admin/subscribers/tag", data=form)
    client.post("/admin/subscribers/tag", data=form)  # again: nobody gets it twice
    refresh(session)
    tag = session.scalar(select(Tag).where(Tag.name == "Vilnius"))
    count = session.scalar(
        select(func.count()).select_from(SubscriberTag).where(SubscriberTag.tag_id == tag.id)
    )
    assert count == 44
    client.post(
        "/admin/subscribers/tag", data={**form, "list": "", "q": "бяляцкі", "operation": "detach"}
    )
    refresh(session)
    count = session.scalar(
        select(func.count()).select_from(SubscriberTag).where(SubscriberTag.tag_id == tag.id)
    )
    assert count == 44 - len([i for i in range(130) if i % 3 == 0 and i % 4 == 0])
    events = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action.in_(["tag.attach", "tag.detach"]))
    ).all()
    assert [e["n"] for e in events] == [44, 0, 11]


def test_lists_create_edit_with_sender_and_validation(client, session, login):
    login(client, "editor")
    page = client.get("/admin/lists/new").get_data(as_text=True)
    token = csrf_from(page)
    bad = client.post(
        "/admin/lists/new",
        data={
            "csrf_token": token,
            "name": "Campaign",
            "slug": "Bad Slug",
            "from_email": "not an address",
        },
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "lower-case letters" in html and "not a valid email" in html
    assert 'value="Campaign"' in html
    ok = client.post(
        "/admin/lists/new",
        data={
            "csrf_token": token,
            "name": "Campaign",
            "slug": "campaign",
            "from_name": "Free Them",
            "from_email": "Team@Example.org",
            "reply_to": "reply@example.org",
            "is_public": "on",
        },
    )
    assert ok.status_code == 302
    refresh(session)
    made = session.scalar(select(MailingList).where(MailingList.slug == "campaign"))
    assert (made.from_name, made.from_email, made.reply_to, made.is_public) == (
        "Free Them",
        "team@example.org",
        "reply@example.org",
        True,
    )
    client.post(
        f"/admin/lists/{made.id}",
        data={"csrf_token": token, "name": "Campaign", "slug": "campaign"},
    )
    refresh(session)
    assert session.get(MailingList, made.id).is_public is False
    assert session.get(MailingList, made.id).from_email is None


def test_tags_page_create_and_delete(client, session, login):
    login(client, "editor")
    token = csrf_from(client.get("/admin/tags").get_data(as_text=True))
    assert (
        client.post(
            "/admin/tags", data={"csrf_token": token, "name": "  Hrodna   region "}
        ).status_code
        == 302
    )
    dup = client.post("/admin/tags", data={"csrf_token": token, "name": "hrodna region"})
    assert dup.status_code == 422 and "exists already" in dup.get_data(as_text=True)
    refresh(session)
    tag = session.scalar(select(Tag))
    assert tag.name == "Hrodna region"
    client.post(f"/admin/tags/{tag.id}/delete", data={"csrf_token": token})
    refresh(session)
    assert session.scalar(select(Tag)) is None
