"""The admin side: feeds (add, errors shown, automatic sends cancelled), a hashtag day's plan,
and a list's welcome mail — every page clean of inline code and remote loads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from clarion.alerts import campaigns, hashtag_days
from clarion.audience import lists as lists_
from clarion.config import reset_settings
from clarion.db import session_scope, utcnow
from clarion.feeds import poll
from clarion.models import Alert, AlertStatus, AuditEvent, Feed, MailingList
from tests.feedserver import FeedServer, Route, item, rss
from tests.helpers import csrf_from, refresh
from tests.integration.test_admin_pages import INLINE, REMOTE


@pytest.fixture
def blog(settings, monkeypatch):
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")
    reset_settings()
    with FeedServer() as server:
        yield server


@pytest.fixture
def inline_polls(monkeypatch):
    """The web asks a worker to poll; here the poll runs at once, in this process."""
    from webapp.admin import feeds as feeds_views

    polled: list[int] = []

    class Poll:
        @staticmethod
        def delay(feed_id: int) -> None:
            polled.append(feed_id)
            poll.poll(feed_id)

    monkeypatch.setattr(feeds_views, "poll", Poll)
    return polled


def post(client, path: str, data: dict | None = None, page: str | None = None):
    token = csrf_from(client.get(page or path).get_data(as_text=True))
    return client.post(path, data={**(data or {}), "csrf_token": token})


def a_while_later(feed_id: int) -> None:
    """As if the last check were a minute ago ("Check now" twice in seconds fetches once)."""
    with session_scope() as writer:
        writer.execute(
            update(Feed)
            .where(Feed.id == feed_id)
            .values(last_polled_at=utcnow() - timedelta(minutes=1))
        )


def assert_clean(client, path: str) -> str:
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, path
    assert not REMOTE.search(html) and not INLINE.search(html), path
    return html


def test_an_editor_adds_a_feed_sees_its_errors_and_cancels_an_automatic_send(
    client, session, login, lists, blog, inline_polls
):
    login(client, "editor")
    blog.routes["/feed.xml"] = Route(rss(item("p1", "Already there")))
    bad = post(client, "/admin/feeds/new", {"url": "ftp://blog", "name": "Blog"})
    assert bad.status_code == 422
    assert 'value="ftp://blog"' in bad.text and "full address" in bad.text
    assert session.scalar(select(Feed.id)) is None

    added = post(
        client,
        "/admin/feeds/new",
        {
            "url": blog.url("/feed.xml"),
            "name": "Blog",
            "auto_send": "on",
            "auto_send_lists": str(lists["alerts"].id),
            "auto_send_delay_minutes": "45",
        },
    )
    assert added.status_code == 302
    refresh(session)
    feed = session.scalar(select(Feed))
    assert inline_polls == [feed.id] and feed.primed_at is not None and feed.auto_send
    page = assert_clean(client, f"/admin/feeds/{feed.id}")
    assert "Already there" in page and "Nothing is waiting" in page

    blog.routes["/feed.xml"] = Route(rss(item("p2", "Fresh post", day=2), item("p1", "Already")))
    a_while_later(feed.id)
    assert (
        post(client, f"/admin/feeds/{feed.id}/check", page=f"/admin/feeds/{feed.id}").status_code
        == 302
    )
    refresh(session)
    alert = session.scalar(select(Alert))
    assert alert.status == AlertStatus.SCHEDULED and alert.subject == "Fresh post"
    page = assert_clean(client, f"/admin/feeds/{feed.id}")
    assert "Cancel the send" in page and f"/admin/alerts/{alert.id}" in page
    assert "From the feed" in assert_clean(client, f"/admin/alerts/{alert.id}")

    cancel = f"/admin/feeds/{feed.id}/cancel/{alert.id}"
    assert post(client, cancel, page=f"/admin/feeds/{feed.id}").status_code == 302
    refresh(session)
    assert session.get(Alert, alert.id).status == AlertStatus.DRAFT
    assert "Nothing is waiting" in assert_clean(client, f"/admin/feeds/{feed.id}")

    blog.routes["/feed.xml"] = Route(b"<rss><channel><item>", "application/rss+xml")
    # Pressed twice in a row, a check fetches once.
    a_while_later(feed.id)
    before = len(blog.hits("/feed.xml"))
    post(client, f"/admin/feeds/{feed.id}/check", page=f"/admin/feeds/{feed.id}")
    again = post(client, f"/admin/feeds/{feed.id}/check", page=f"/admin/feeds/{feed.id}")
    assert "checked seconds ago" in client.get(again.location).text
    assert len(blog.hits("/feed.xml")) == before + 1
    page = assert_clean(client, f"/admin/feeds/{feed.id}")
    assert 'id="feed-error"' in page and "not well-formed XML" in page
    assert "failing" in assert_clean(client, "/admin/feeds")


def test_a_viewer_sees_feeds_but_changes_nothing(client, session, login, make_editor, blog):
    from clarion.feeds import feeds

    login(client, "viewer")
    feed = feeds.create_feed(session, make_editor("editor")[0], {"url": blog.url("/feed.xml")})
    session.commit()
    assert "Check now" not in assert_clean(client, f"/admin/feeds/{feed.id}")
    refused = post(client, f"/admin/feeds/{feed.id}/delete", page=f"/admin/feeds/{feed.id}")
    assert refused.status_code == 403
    refresh(session)
    assert session.get(Feed, feed.id) is not None


def test_an_editor_plans_a_hashtag_day_in_their_zone(client, session, login, lists):
    editor = login(client, "editor")
    editor.timezone = "Europe/Warsaw"
    session.commit()
    day = campaigns.create_draft(
        session,
        editor,
        campaigns.Draft(
            kind="hashtag_day",
            subject="Post #FreeAles",
            fields={
                "hashtags": "#FreeAles",
                "action_date": "2030-03-31",
                "action_time": "12:00",
                "action_timezone": "Europe/Warsaw",
                "suggested_post": "Free Ales",
            },
            lists=[lists["alerts"].id],
        ),
    )
    session.commit()
    path = f"/admin/alerts/{day.id}"
    page = assert_clean(client, path)
    assert 'id="plan-form"' in page and 'value="Today: Post #FreeAles"' in page

    refused = post(client, f"{path}/plan", {"announcement_at": "2030-03-31T09:00"}, page=path)
    assert refused.status_code == 422
    assert "before the day of action" in refused.text and 'value="2030-03-31T09:00"' in refused.text
    assert not hashtag_days.children(session, day)

    saved = post(
        client,
        f"{path}/plan",
        {"announcement_at": "2030-03-30T09:00", "reminder_at": "2030-03-31T09:00",
         "reminder_subject": "It is today"},
        page=path,
    )  # fmt: skip
    assert saved.status_code == 302
    refresh(session)
    planned = hashtag_days.children(session, session.get(Alert, day.id))
    announcement, reminder = planned[hashtag_days.PLANNED[0]], planned[hashtag_days.PLANNED[1]]
    assert announcement.scheduled_at.isoformat() == "2030-03-30T08:00:00+00:00"
    assert reminder.scheduled_at.isoformat() == "2030-03-31T07:00:00+00:00"
    assert reminder.subject == "It is today"
    page = assert_clean(client, path)
    assert 'value="2030-03-31T09:00"' in page and 'value="2030-03-30T09:00"' in page
    child = assert_clean(client, f"/admin/alerts/{reminder.id}")
    assert 'id="planned-for"' in child and 'id="schedule-form"' not in child
    assert f"/admin/alerts/{reminder.id}/edit" not in child
    actions = session.scalars(select(AuditEvent.action)).all()
    assert actions.count("alert.plan") == 2


def test_an_owner_chooses_a_welcome_mail_for_a_list(client, session, login, lists):
    owner = login(client, "owner")
    draft = campaigns.create_draft(
        session,
        owner,
        campaigns.Draft(kind="newsletter", subject="Welcome!", fields={"body_md": "Hello"}),
    )
    session.commit()
    path = f"/admin/lists/{lists['alerts'].id}"
    page = assert_clean(client, path)
    assert f'<option value="{draft.id}"' in page
    form = {"name": "Urgent alerts", "slug": "alerts", "is_public": "on"}
    saved = post(client, path, {**form, "welcome_alert_id": str(draft.id)})
    assert saved.status_code == 302
    refresh(session)
    assert lists_.welcome_alert_id(session, session.get(MailingList, lists["alerts"].id)) == (
        draft.id
    )
    assert "/admin/series/" in assert_clean(client, path)  # the list links its welcome series
    welcome = session.get(Alert, draft.id)
    assert welcome.role == "welcome" and welcome.status == AlertStatus.SENDING
    assert welcome.audience["lists"] == [lists["alerts"].id] and welcome.frozen_html
    assert "each reader who confirms gets it once" in assert_clean(
        client, f"/admin/alerts/{draft.id}"
    )
    # The frozen welcome cannot serve a second list.
    other = f"/admin/lists/{lists['news'].id}"
    refused = post(client, other, {"name": "Newsletter", "slug": "news",
                                   "welcome_alert_id": str(draft.id)})  # fmt: skip
    assert refused.status_code == 422 and "Choose a draft" in refused.text
    refresh(session)
    assert lists_.welcome_alert_id(session, session.get(MailingList, lists["news"].id)) is None
