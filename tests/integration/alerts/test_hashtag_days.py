"""A hashtag day's announcement and reminder: planned in the editor's zone (across daylight-
saving changes), sent as ordinary sends frozen at their own start, the reminder skipping those
who acted."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from clarion import jobqueue
from clarion.alerts import campaigns, hashtag_days, kinds
from clarion.config import get_settings, reset_settings
from clarion.db import session_scope, utcnow
from clarion.delivery import dispatch
from clarion.errors import InvalidTransition, ValidationError
from clarion.models import Alert, AlertRole, AlertStatus, Click, Delivery, Subscriber
from clarion.tokens import CLICK, delivery_tokens
from tests.faultsmtp import FaultServer
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_audience, make_list

A, R = AlertRole.ANNOUNCEMENT, AlertRole.REMINDER
PlanItem = hashtag_days.PlanItem


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.fixture
def mail(settings, monkeypatch):
    """An SMTP server keeping every message, for this test."""
    with FaultServer(keep=True) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        reset_settings()
        yield server.handler


def make_day(session, editor, lists, date: str, zone: str, **fields) -> Alert:
    draft = campaigns.Draft(
        kind="hashtag_day",
        subject="Post #FreeAles with us",
        fields={
            "hashtags": "#FreeAles",
            "action_date": date,
            "action_time": "12:00",
            "action_timezone": zone,
            "suggested_post": "Ales Bialiatski has been jailed for years.",
            "share_url": "https://blog.example.org/ales",
            **fields,
        },
        lists=[ml.id for ml in lists],
    )
    alert = campaigns.create_draft(session, editor, draft)
    session.commit()
    return alert


def editor_in(make_editor, session, zone: str):
    editor = make_editor("editor")[0]
    editor.timezone = zone
    session.commit()
    return editor


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "announce", "remind", "announce_utc", "remind_utc"),
    [
        # Warsaw moves its clocks forward on 2030-03-31: 09:00 is 08:00 UTC the day before,
        # 07:00 UTC on the day.
        ("Europe/Warsaw", "2030-03-31", "2030-03-30T09:00", "2030-03-31T09:00",
         "2030-03-30T08:00", "2030-03-31T07:00"),
        # New York moves them back on 2030-11-03: 09:00 is 13:00 UTC, then 14:00 UTC.
        ("America/New_York", "2030-11-03", "2030-11-02T09:00", "2030-11-03T09:00",
         "2030-11-02T13:00", "2030-11-03T14:00"),
    ],
)  # fmt: skip
def test_a_plan_across_a_daylight_saving_change_starts_each_mail_at_its_local_time(
    session, make_editor, queue, zone, day, announce, remind, announce_utc, remind_utc
):
    editor = editor_in(make_editor, session, zone)
    alerts = make_list(session)
    make_audience(session, alerts, 2)
    parent = make_day(session, editor, [alerts], day, zone)
    planned = hashtag_days.plan(
        session, editor, parent, {A: PlanItem(announce), R: PlanItem(remind)}
    )
    session.commit()
    announcement, reminder = planned[A], planned[R]
    assert announcement.scheduled_at == at(announce_utc)
    assert reminder.scheduled_at == at(remind_utc)
    assert (announcement.role, reminder.role) == ("announcement", "reminder")
    assert announcement.parent_id == reminder.parent_id == parent.id
    assert reminder.subject == "Today: Post #FreeAles with us"

    minute = timedelta(minutes=1)
    assert dispatch.start_due_alerts(at(announce_utc) - minute) == []
    assert dispatch.start_due_alerts(at(announce_utc)) == [announcement.id]
    assert dispatch.start_due_alerts(at(remind_utc) - minute) == []
    assert dispatch.start_due_alerts(at(remind_utc)) == [reminder.id]
    refresh(session)
    assert session.get(Alert, announcement.id).status == AlertStatus.SENDING
    assert session.get(Alert, reminder.id).status == AlertStatus.SENDING


def test_plans_that_make_no_sense_are_refused_with_reasons(session, make_editor, lists):
    editor = editor_in(make_editor, session, "Europe/Warsaw")
    parent = make_day(session, editor, [lists["alerts"]], "2030-03-31", "Europe/Warsaw")

    def refused(items) -> dict[str, str]:
        with pytest.raises(ValidationError) as caught:
            hashtag_days.plan(session, editor, parent, items)
        session.rollback()
        return caught.value.errors

    # 02:30 does not exist in Warsaw that night: the clocks jump from 02:00 to 03:00.
    assert "does not exist" in refused({R: PlanItem("2030-03-31T02:30")})["reminder_at"]
    assert "before the day" in refused({A: PlanItem("2030-03-31T08:00")})["announcement_at"]
    assert "on the day" in refused({R: PlanItem("2030-03-30T20:00")})["reminder_at"]
    assert "already passed" in refused({A: PlanItem("2020-01-01T10:00")})["announcement_at"]
    errors = refused({A: PlanItem("2030-03-30T23:30"), R: PlanItem("2030-03-30T23:00")})
    assert "on the day" in errors["reminder_at"]
    # The day is in the action's zone: 23:30 in New York on the 30th is the 31st in Warsaw.
    editor.timezone = "America/New_York"
    assert "before the day" in refused({A: PlanItem("2030-03-30T23:30")})["announcement_at"]
    newsletter = campaigns.create_draft(
        session, editor, campaigns.Draft(kind="newsletter", subject="S", fields={"body_md": "x"})
    )
    with pytest.raises(InvalidTransition):
        hashtag_days.plan(session, editor, newsletter, {A: PlanItem("2030-03-30T10:00")})


def test_planned_mails_follow_the_day_are_edited_through_it_and_can_be_dropped(
    session, make_editor, lists
):
    editor = editor_in(make_editor, session, "UTC")
    parent = make_day(session, editor, [lists["alerts"]], "2030-05-02", "UTC")
    planned = hashtag_days.plan(
        session,
        editor,
        parent,
        {A: PlanItem("2030-05-01T09:00", "Tomorrow!"), R: PlanItem("2030-05-02T09:00")},
    )
    session.commit()
    announcement = planned[A]
    assert announcement.subject == "Tomorrow!"
    with pytest.raises(InvalidTransition, match="Edit the hashtag day"):
        campaigns.update_draft(
            session, editor, announcement, campaigns.Draft.from_alert(announcement)
        )
    with pytest.raises(InvalidTransition, match="remove them from the plan"):
        campaigns.delete_draft(session, editor, parent)
    session.rollback()
    # Moving one and dropping the other keeps the same announcement alert.
    moved = hashtag_days.plan(session, editor, parent, {A: PlanItem("2030-05-01T18:00")})
    session.commit()
    assert moved[A].id == announcement.id and R not in moved
    assert moved[A].scheduled_at == at("2030-05-01T18:00")
    children = session.scalars(select(Alert.role).where(Alert.parent_id == parent.id)).all()
    assert children == ["announcement"]


def test_the_reminder_skips_readers_who_shared_and_each_mail_is_frozen_at_its_start(
    session, client, make_editor, queue, mail
):
    editor = editor_in(make_editor, session, "UTC")
    alerts = make_list(session)
    readers = make_audience(session, alerts, 4)
    # The post to read is linked in the intro: the "Post this" text is for copying, untracked.
    intro = "Read [why Ales is jailed](https://blog.example.org/ales) first."
    parent = make_day(session, editor, [alerts], "2030-05-02", "UTC", intro=intro)
    planned = hashtag_days.plan(
        session, editor, parent, {A: PlanItem("2030-05-01T09:00"), R: PlanItem("2030-05-02T08:00")}
    )
    session.commit()
    announcement_id, reminder_id = planned[A].id, planned[R].id

    assert dispatch.start_due_alerts(at("2030-05-01T09:00")) == [announcement_id]
    queue.drain()
    refresh(session)
    announcement = session.get(Alert, announcement_id)
    assert announcement.status == AlertStatus.SENT and announcement.recipients == 4
    base_url = get_settings().base_url
    links = announcement.frozen_links
    shares = [n for n, url in enumerate(links) if kinds.is_share_link(url, base_url)]
    others = [n for n, url in enumerate(links) if n not in shares]
    assert len(shares) == 5  # X, Bluesky, Mastodon, Facebook, Telegram
    assert links[others[0]] == "https://blog.example.org/ales"

    # Readers click the announcement's links through /r/ (buffered in Redis; the reminder's
    # dispatch writes the buffer first). Reader 0 shares; reader 1 only reads the post; reader
    # 2's mail system opens a share link the moment the mail arrives: a link scanner.
    rows = dict(
        session.execute(
            select(Delivery.subscriber_id, Delivery.id).where(Delivery.alert_id == announcement_id)
        ).all()
    )
    with session_scope() as writer:  # a person clicks some time after the mail arrived
        writer.execute(
            update(Delivery)
            .where(Delivery.alert_id == announcement_id)
            .values(sent_at=utcnow() - timedelta(minutes=5))
        )
        writer.execute(
            update(Delivery).where(Delivery.id == rows[readers[2]]).values(sent_at=utcnow())
        )
    tokens = delivery_tokens(CLICK)
    for reader, index in ((0, shares[2]), (1, others[0]), (2, shares[0])):
        response = client.get(f"/r/{tokens.encode(rows[readers[reader]])}/{index}")
        assert response.status_code == 302 and response.location == links[index]
    refresh(session)
    # The day's text changes after the announcement went out: the reminder says the new one.
    fields = dict(parent.fields)
    fields["suggested_post"] = "Today: Ales Bialiatski, jailed for years. Write to him."
    draft = campaigns.Draft.from_alert(parent)
    draft.fields = fields
    campaigns.update_draft(session, editor, parent, draft)
    session.commit()

    assert dispatch.start_due_alerts(at("2030-05-02T08:00")) == [reminder_id]
    queue.drain()
    refresh(session)
    reminder = session.get(Alert, reminder_id)
    assert reminder.status == AlertStatus.SENT
    clicks = session.execute(select(Click.subscriber_id, Click.suspected_scanner)).all()
    assert sorted(clicks) == [(readers[0], False), (readers[1], False), (readers[2], True)]
    got = set(
        session.scalars(
            select(Subscriber.email)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.alert_id == reminder_id)
        )
    )
    assert got == {"r1@example.org", "r2@example.org", "r3@example.org"}
    subjects: dict[str, list[str]] = {}
    for _, rcpt, raw in mail.messages:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        subjects.setdefault(message["Subject"], []).append(rcpt)
        if message["Subject"].startswith("Today"):
            assert "Write to him" in message.get_body(("plain",)).get_content()
        else:
            assert "Write to him" not in message.get_body(("plain",)).get_content()
    assert len(subjects["Post #FreeAles with us"]) == 4
    assert sorted(subjects["Today: Post #FreeAles with us"]) == sorted(got)


def test_an_announcement_too_late_goes_back_to_draft_saying_why(session, make_editor, queue):
    editor = editor_in(make_editor, session, "UTC")
    alerts = make_list(session)
    make_audience(session, alerts, 1)
    parent = make_day(session, editor, [alerts], "2030-05-02", "UTC")
    announcement = hashtag_days.plan(session, editor, parent, {A: PlanItem("2030-05-01T09:00")})[A]
    session.commit()
    # The day is moved to the past (say, a typo fixed): the announcement has lost its point.
    draft = campaigns.Draft.from_alert(parent)
    draft.fields = {**parent.fields, "action_date": "2020-05-02"}
    campaigns.update_draft(session, editor, parent, draft)
    session.commit()
    assert dispatch.start_due_alerts(at("2030-05-01T09:00")) == []
    refresh(session)
    back = session.get(Alert, announcement.id)
    assert back.status == AlertStatus.DRAFT and "too late to announce" in back.status_reason
