"""A page of subscribers from /api/v1: each reader's lists, tags and suppression, read in the
same few statements whatever the page's size (bench/api.py measures the speed)."""

from __future__ import annotations

from sqlalchemy import event

from clarion.config import get_settings
from clarion.db import get_engine
from clarion.models import (
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
)
from tests.integration.integrations.conftest import bearer


def test_a_page_shows_each_readers_lists_by_slug_tags_by_name_and_suppression(
    client, session, lists, make_token
):
    secret = make_token("editor", ("read",))
    anna = Subscriber(email="anna@example.org", name="Anna")
    ben = Subscriber(email="ben@example.org", name="Ben")
    gone = Subscriber(email="gone@example.org", name="Gone")
    zeta, alpha = Tag(name="zeta"), Tag(name="alpha")
    session.add_all([anna, ben, gone, zeta, alpha])
    session.flush()
    session.add_all(
        [
            Subscription(
                subscriber_id=anna.id,
                list_id=lists["news"].id,
                status=SubscriptionStatus.SUBSCRIBED,
            ),
            Subscription(subscriber_id=anna.id, list_id=lists["alerts"].id),
            Subscription(
                subscriber_id=gone.id,
                list_id=lists["alerts"].id,
                status=SubscriptionStatus.UNSUBSCRIBED,
            ),
            SubscriberTag(subscriber_id=anna.id, tag_id=zeta.id),
            SubscriberTag(subscriber_id=anna.id, tag_id=alpha.id),
            SubscriberTag(subscriber_id=gone.id, tag_id=zeta.id),
            Suppression(email="gone@example.org", reason=SuppressionReason.HARD_BOUNCE),
        ]
    )
    session.commit()
    page = client.get("/api/v1/subscribers", headers=bearer(secret)).json
    shown = {item["email"]: item for item in page["items"]}
    assert [item["email"] for item in page["items"]] == [
        "gone@example.org",
        "ben@example.org",
        "anna@example.org",
    ]
    assert shown["anna@example.org"]["lists"] == [
        {"list_id": lists["alerts"].id, "slug": "alerts", "status": "pending"},
        {"list_id": lists["news"].id, "slug": "news", "status": "subscribed"},
    ]
    assert shown["anna@example.org"]["tags"] == ["alpha", "zeta"]
    assert shown["ben@example.org"]["lists"] == [] and shown["ben@example.org"]["tags"] == []
    assert shown["gone@example.org"]["lists"] == [
        {"list_id": lists["alerts"].id, "slug": "alerts", "status": "unsubscribed"}
    ]
    assert shown["gone@example.org"]["tags"] == ["zeta"]
    assert [item["suppressed"] for item in page["items"]] == [True, False, False]


def _selects(client, path: str, secret: str) -> int:
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    engine = get_engine(get_settings().database_url)
    event.listen(engine, "before_cursor_execute", note)
    try:
        assert client.get(path, headers=bearer(secret)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT"))


def test_a_page_of_readers_costs_two_queries_whatever_its_size(
    client, session, lists, make_token
):
    secret = make_token("editor", ("read",))
    tag = Tag(name="donor")
    session.add(tag)
    readers = [Subscriber(email=f"r{i}@example.org") for i in range(60)]
    session.add_all(readers)
    session.flush()
    for reader in readers:
        session.add(Subscription(subscriber_id=reader.id, list_id=lists["alerts"].id))
        session.add(SubscriberTag(subscriber_id=reader.id, tag_id=tag.id))
    session.commit()
    # The first request reads the token and its editor (and notes its last use); after that the
    # process knows it: the page, then the lists and tags of all on it with their suppression
    # in one statement.
    assert _selects(client, "/api/v1/subscribers", secret) == 3
    assert _selects(client, "/api/v1/subscribers", secret) == 2
    assert _selects(client, "/api/v1/subscribers?q=r1", secret) == 2
