"""Feeds served by a blog on loopback: new posts become alerts, failures are shown, no floods."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clarion.alerts import campaigns, media
from clarion.config import get_settings, reset_settings
from clarion.db import utcnow
from clarion.delivery import dispatch
from clarion.feeds import feeds
from clarion.feeds import poll as feedpoll
from clarion.models import Alert, AlertStatus, AuditEvent, Feed, FeedEntry
from tests.feedserver import PNG, FeedServer, Route, item, rss
from tests.helpers import refresh


@pytest.fixture
def blog(settings, monkeypatch):
    """The blog, and Clarion allowed to fetch from loopback (it is private: refused otherwise)."""
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")
    monkeypatch.setenv("CLARION_FETCH_TIMEOUT", "1")
    monkeypatch.setenv("CLARION_FETCH_MAX_BYTES", str(64 * 1024))
    reset_settings()
    with FeedServer() as server:
        server.routes["/image.png"] = Route(PNG, "image/png")
        yield server


@pytest.fixture
def editor(make_editor):
    return make_editor("editor")[0]


def add_feed(session, editor, url: str, **values) -> Feed:
    feed = feeds.create_feed(session, editor, {"url": url, "name": "Blog", **values})
    session.commit()
    return feed


def poll(session, feed: Feed) -> feedpoll.PollOutcome:
    outcome = feedpoll.poll(feed.id)
    refresh(session)
    return outcome


def alerts_from(session, feed: Feed) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .join(FeedEntry, Alert.feed_entry_id == FeedEntry.id)
            .where(FeedEntry.feed_id == feed.id)
            .order_by(Alert.id)
        )
    )


def test_first_poll_marks_entries_seen_and_later_posts_become_drafts(session, blog, editor):
    blog.routes["/feed.xml"] = Route(rss(item("old-1", "Old one"), item("old-2", "Old two")))
    feed = add_feed(session, editor, blog.url("/feed.xml"))

    first = poll(session, feed)
    assert first.status == "primed" and first.new_alerts == [] and first.seen == 2
    assert session.scalar(select(func.count()).select_from(Alert)) == 0
    assert session.get(Feed, feed.id).primed_at is not None

    post = item(
        "day-1000",
        "1,000 days: write to Ales",
        "<p>Ales has been held for <b>1,000 days</b>.</p><script>steal()</script><p>Write.</p>",
        image=blog.url("/image.png"),
        day=3,
    )
    blog.routes["/feed.xml"] = Route(rss(post, item("old-1", "Old one"), item("old-2", "Old two")))
    second = poll(session, feed)
    assert second.status == "polled" and len(second.new_alerts) == 1
    alert = session.get(Alert, second.new_alerts[0])
    assert alert.status == AlertStatus.DRAFT and alert.kind.value == "new_post"
    assert alert.subject == "1,000 days: write to Ales"
    assert alert.fields["post_url"] == "https://blog.example.org/day-1000"
    assert alert.fields["excerpt"] == "Ales has been held for 1,000 days.\n\nWrite."
    # The image is ours: copied once, never loaded from the blog by a reader's mail client.
    settings = get_settings()
    assert media.is_own_media(alert.fields["image_url"], settings.base_url)
    stored = settings.instance_dir / "media" / alert.fields["image_url"].rsplit("/", 1)[1]
    assert stored.read_bytes() == PNG
    assert blog.url("/") not in campaigns.render_preview(session, alert).html

    # Unchanged since: a conditional request, a 304, nothing new.
    third = poll(session, feed)
    assert third.status == "not_modified"
    assert blog.hits("/feed.xml")[-1].headers["if-none-match"].startswith('"')
    assert "if-modified-since" in blog.hits("/feed.xml")[-1].headers
    assert len(alerts_from(session, feed)) == 1


def test_a_new_address_starts_afresh_and_its_existing_posts_make_no_alerts(session, blog, editor):
    blog.routes["/old.xml"] = Route(rss(item("old-1", "Old one")))
    feed = add_feed(session, editor, blog.url("/old.xml"))
    assert poll(session, feed).status == "primed"
    assert poll(session, feed).status == "not_modified"

    moved = [item("new-1", "New blog one"), item("new-2", "New blog two")]
    blog.routes["/new.xml"] = Route(rss(*moved))
    feeds.update_feed(session, editor, feed, {"url": blog.url("/new.xml"), "name": "Blog"})
    session.commit()
    outcome = poll(session, feed)
    assert (outcome.status, outcome.new_alerts, outcome.seen) == ("primed", [], 2)
    # The old feed's validators are not offered to the new address.
    assert "if-none-match" not in blog.hits("/new.xml")[0].headers
    assert alerts_from(session, feed) == []

    blog.routes["/new.xml"] = Route(rss(item("new-3", "After the move", day=4), *moved))
    later = poll(session, feed)
    assert later.status == "polled" and len(later.new_alerts) == 1


def test_an_edited_entry_updates_its_untouched_draft_and_never_makes_a_second(
    session, blog, editor
):
    blog.routes["/feed.xml"] = Route(rss())
    feed = add_feed(session, editor, blog.url("/feed.xml"))
    poll(session, feed)
    blog.routes["/feed.xml"] = Route(rss(item("p1", "Frist title", "<p>Draft text</p>")))
    (alert_id,) = poll(session, feed).new_alerts

    blog.routes["/feed.xml"] = Route(rss(item("p1", "First title", "<p>Final text</p>")))
    outcome = poll(session, feed)
    assert outcome.new_alerts == [] and outcome.updated == 1
    alert = session.get(Alert, alert_id)
    assert alert.subject == "First title" and alert.fields["excerpt"] == "Final text"
    assert "updated" in session.scalar(select(FeedEntry.note))

    # Once an editor has worked on the alert, the feed no longer touches it.
    draft = campaigns.Draft.from_alert(alert)
    draft.subject = "Read this: First title"
    campaigns.update_draft(session, editor, alert, draft)
    session.commit()
    blog.routes["/feed.xml"] = Route(rss(item("p1", "First title (updated)", "<p>More</p>")))
    outcome = poll(session, feed)
    assert outcome.new_alerts == [] and outcome.updated == 0
    alert = session.get(Alert, alert_id)
    assert alert.subject == "Read this: First title" and alert.fields["excerpt"] == "Final text"
    assert "kept" in session.scalar(select(FeedEntry.note))
    assert len(alerts_from(session, feed)) == 1


def test_many_new_entries_at_once_make_a_few_alerts_not_a_flood(session, blog, editor):
    blog.routes["/feed.xml"] = Route(rss())
    feed = add_feed(session, editor, blog.url("/feed.xml"))
    poll(session, feed)
    blog.routes["/feed.xml"] = Route(rss(*(item(f"p{n}", f"Post {n}", day=n) for n in range(1, 9))))
    outcome = poll(session, feed)
    made = [session.get(Alert, i).subject for i in outcome.new_alerts]
    assert made == ["Post 4", "Post 5", "Post 6", "Post 7", "Post 8"]  # the newest, oldest first
    assert outcome.seen == 3
    notes = session.scalars(select(FeedEntry.note).where(FeedEntry.entry_id.in_(["p1", "p2"])))
    assert all("more than 5 new posts" in note for note in notes)


def test_automatic_send_waits_its_delay_and_can_be_cancelled(session, blog, editor, lists):
    blog.routes["/feed.xml"] = Route(rss())
    feed = add_feed(
        session,
        editor,
        blog.url("/feed.xml"),
        auto_send="on",
        auto_send_lists=[lists["alerts"].id],
        auto_send_delay_minutes="30",
    )
    poll(session, feed)
    blog.routes["/feed.xml"] = Route(rss(item("a", "Post A", day=2), item("b", "Post B", day=3)))
    before = utcnow()
    first, second = (session.get(Alert, i) for i in poll(session, feed).new_alerts)
    for alert in (first, second):
        assert alert.status == AlertStatus.SCHEDULED
        assert alert.audience["lists"] == [lists["alerts"].id]
        assert before + timedelta(minutes=30) <= alert.scheduled_at
        assert alert.scheduled_at <= utcnow() + timedelta(minutes=30)
    assert [a.id for a in feeds.pending_sends(session, session.get(Feed, feed.id))] == [
        first.id,
        second.id,
    ]

    feeds.cancel_auto_send(session, editor, session.get(Feed, feed.id), first)
    session.commit()
    refresh(session)
    cancelled = session.get(Alert, first.id)
    assert cancelled.status == AlertStatus.DRAFT and cancelled.scheduled_at is None
    assert "cancelled by editor@example.org" in cancelled.status_reason
    # Nothing starts before its time; at its time, the other one does (nobody is subscribed
    # to the list here, so it goes back to draft saying so — the point is that beat took it).
    assert dispatch.start_due_alerts(now=utcnow()) == []
    dispatch.start_due_alerts(now=second.scheduled_at)
    refresh(session)
    assert session.get(Alert, first.id).status == AlertStatus.DRAFT
    assert "did not start" in session.get(Alert, second.id).status_reason
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("alert.unschedule") == 1 and "alert.schedule_failed" in actions


FAILURES = {
    "malformed XML": (
        Route(rss(item("p9", "Broken"))[:-40]),
        "not well-formed XML",
    ),
    "not a feed": (Route(b"<html><body>Hello</body></html>", "text/html"), "RSS or Atom"),
    "huge": (Route(huge=200 * 1024), "larger than the 64 KB"),
    "HTTP error": (Route(b"oops", status=500), "answered 500"),
    "redirect to a private address": (
        Route(status=302, location="http://169.254.169.254/latest/meta-data/"),
        "169.254.169.254 is a private, loopback or link-local address",
    ),
    "timeout": (Route(slow=True), "took longer than 1 seconds"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_fetch_failures_are_recorded_and_change_nothing_else(session, blog, editor, case):
    blog.routes["/feed.xml"] = Route(rss(item("p1", "Seen")))
    feed = add_feed(session, editor, blog.url("/feed.xml"))
    poll(session, feed)
    route, message = FAILURES[case]
    blog.routes["/feed.xml"] = route
    outcome = poll(session, feed)
    assert outcome.status == "failed" and message in outcome.error
    stored = session.get(Feed, feed.id)
    assert message in stored.last_error and stored.last_error_at is not None
    assert session.scalar(select(func.count()).select_from(FeedEntry)) == 1
    assert session.scalar(select(func.count()).select_from(Alert)) == 0
    # The next good poll clears the error.
    blog.routes["/feed.xml"] = Route(rss(item("p1", "Seen"), item("p2", "New", day=2)))
    assert len(poll(session, feed).new_alerts) == 1
    assert session.get(Feed, feed.id).last_error == ""


def test_an_unreachable_feed_is_recorded(session, settings, editor, monkeypatch):
    from tests.services import free_port

    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")
    reset_settings()
    feed = add_feed(session, editor, f"http://127.0.0.1:{free_port()}/feed.xml")
    outcome = poll(session, feed)
    assert outcome.status == "failed" and "Could not fetch from 127.0.0.1" in outcome.error
    assert session.get(Feed, feed.id).primed_at is None


def test_loopback_is_refused_unless_the_operator_allows_it(session, settings, editor):
    with FeedServer() as server:
        server.routes["/feed.xml"] = Route(rss(item("p1", "Seen")))
        feed = add_feed(session, editor, server.url("/feed.xml"))
        outcome = poll(session, feed)
    assert outcome.status == "failed"
    assert "127.0.0.1 is a private, loopback or link-local address" in outcome.error
    assert "CLARION_ALLOW_PRIVATE_FETCH" in session.get(Feed, feed.id).last_error
    assert server.requests == []  # refused before connecting


def test_a_feed_is_polled_once_per_interval(session, blog, editor, monkeypatch):
    blog.routes["/feed.xml"] = Route(rss())
    feed = add_feed(session, editor, blog.url("/feed.xml"))
    disabled = add_feed(session, editor, blog.url("/other.xml"), enabled="")
    session.execute(Feed.__table__.update().where(Feed.id == disabled.id).values(enabled=False))
    session.commit()
    now = utcnow()
    assert feedpoll.claim_due(now) == [feed.id]
    assert feedpoll.claim_due(now) == []
    assert feedpoll.claim_due(now + timedelta(seconds=599)) == []
    assert feedpoll.claim_due(now + timedelta(seconds=600)) == [feed.id]
