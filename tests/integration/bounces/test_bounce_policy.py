"""The bounce policy on a real database: what each class of report does to a reader, counting
soft bounces once a day, the reset by a successful delivery, sender-fault notices and pauses,
evidence and its retention, and the owners' settings page."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clarion import retention
from clarion.bounces import policy as bounce_rules
from clarion.bounces.numbers import BouncePolicy, load_policy
from clarion.db import session_scope, utcnow
from clarion.delivery.refusals import Finding
from clarion.errors import NotFound
from clarion.models import (
    AdminNotice,
    Alert,
    AlertStatus,
    AuditEvent,
    Bounce,
    BounceClass,
    ConsentRecord,
    Editor,
    Suppression,
    SuppressionReason,
)
from clarion.redisconn import get_redis
from tests.bouncekit import reader_on, sent_to
from tests.helpers import csrf_from, refresh, subscription_states
from tests.sendkit import make_alert

POLICY = BouncePolicy()


def finding(sent, klass: BounceClass, status: str = "", reason: str = "r") -> Finding:
    return Finding(
        classification=klass,
        status=status,
        reason=reason,
        email=sent.reader.email,
        source="smtp",
        subscriber_id=sent.reader.id,
        delivery_id=sent.delivery.id,
        alert_id=sent.alert.id,
        evidence=b"Subject: the report itself\r\n\r\nbody",
    )


def act(f: Finding, now=None, policy: BouncePolicy = POLICY) -> Bounce:
    with session_scope() as s:
        bounce = bounce_rules.act(s, f, policy, now)
        s.flush()
        s.expunge(bounce)
    return bounce


def suppressed(session) -> dict[str, str]:
    refresh(session)
    return {s.email: s.reason.value for s in session.scalars(select(Suppression))}


@pytest.fixture
def sent(session, lists):
    reader = reader_on(session, [lists["alerts"], lists["news"]])
    return sent_to(session, reader, [lists["alerts"]], sent_at=utcnow() - timedelta(days=40))


def test_a_hard_bounce_suppresses_at_once_and_keeps_its_evidence(session, sent):
    bounce = act(finding(sent, BounceClass.HARD, "5.1.1", "mailbox does not exist"))
    assert bounce.action == "suppressed"
    assert suppressed(session) == {"reader@example.org": "hard_bounce"}
    row = session.get(Bounce, bounce.id)
    assert row.evidence.startswith(b"Subject: the report itself")
    assert (row.delivery_id, row.alert_id) == (sent.delivery.id, sent.alert.id)
    # The reader stays on the lists: lifting the suppression gives everything back.
    assert subscription_states(session, "reader@example.org") == {
        "alerts": "subscribed",
        "news": "subscribed",
    }


def test_a_soft_bounce_counts_once_a_day_and_three_in_fifteen_days_suppress(session, sent):
    # Noon, so that two hours later is the same calendar day whenever the suite runs (at 22:30 it
    # was not, and the test failed).
    day = (utcnow() - timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    assert act(finding(sent, BounceClass.SOFT), now=day).action == "counted 1 of 3"
    again = act(finding(sent, BounceClass.SOFT), now=day + timedelta(hours=2))
    assert (again.action, again.counted) == ("not counted: counted today", False)
    assert act(finding(sent, BounceClass.SOFT), now=day + timedelta(days=6)).action == (
        "counted 2 of 3"
    )
    assert suppressed(session) == {}
    last = act(finding(sent, BounceClass.SOFT), now=day + timedelta(days=9))
    assert last.action == "counted 3 of 3, suppressed"
    assert suppressed(session) == {"reader@example.org": "soft_bounces"}


def test_soft_bounces_further_apart_than_the_window_never_add_up(session, sent):
    start = utcnow() - timedelta(days=60)
    for days in (0, 16, 32, 48):
        bounce = act(finding(sent, BounceClass.SOFT), now=start + timedelta(days=days))
        assert bounce.action == "counted 1 of 3"
    assert suppressed(session) == {}


def test_a_later_successful_delivery_resets_the_count(session, sent, lists):
    start = utcnow() - timedelta(days=12)
    act(finding(sent, BounceClass.SOFT), now=start)
    act(finding(sent, BounceClass.SOFT), now=start + timedelta(days=1))
    # A delivery sent after them, accepted, and not reported on for three days: a success.
    sent_to(session, sent.reader, [lists["alerts"]], sent_at=start + timedelta(days=2))
    bounce = act(finding(sent, BounceClass.SOFT), now=start + timedelta(days=6))
    assert bounce.action == "counted 1 of 3"
    assert suppressed(session) == {}


def test_a_delivery_that_bounced_or_is_too_recent_is_no_success(session, sent, lists):
    start = utcnow() - timedelta(days=12)
    act(finding(sent, BounceClass.SOFT), now=start)
    bounced = sent_to(session, sent.reader, [lists["alerts"]], sent_at=start + timedelta(days=1))
    act(finding(bounced, BounceClass.SOFT), now=start + timedelta(days=2))
    # Sent a day before the next bounce: too recent for its silence to mean anything.
    sent_to(session, sent.reader, [lists["alerts"]], sent_at=start + timedelta(days=3))
    bounce = act(finding(sent, BounceClass.SOFT), now=start + timedelta(days=4))
    assert bounce.action == "counted 3 of 3, suppressed"
    assert (
        bounce_rules.last_success(session, sent.reader.id, POLICY, start + timedelta(days=4))
        is None
    )


def test_a_complaint_unsubscribes_from_everything_and_suppresses(session, sent):
    bounce = act(finding(sent, BounceClass.COMPLAINT, reason="complaint: abuse"))
    assert bounce.action == "unsubscribed, suppressed"
    assert subscription_states(session, "reader@example.org") == {
        "alerts": "unsubscribed",
        "news": "unsubscribed",
    }
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.action == "complaint"))
    assert (
        sorted(record.list_ids) == sorted([s.list_id for s in sent.reader.subscriptions])
        and record.alert_id == sent.alert.id
    )
    assert suppressed(session) == {"reader@example.org": "complaint"}


def test_a_complaint_from_someone_on_no_list_is_still_on_record(session, sent):
    act(finding(sent, BounceClass.COMPLAINT))
    act(finding(sent, BounceClass.COMPLAINT))
    refresh(session)
    actions = session.scalars(select(ConsentRecord.action).order_by(ConsentRecord.id))
    assert list(actions) == ["complaint", "complaint"]


def test_sender_fault_leaves_the_reader_alone_tells_owners_and_pauses_when_it_repeats(
    session, lists
):
    reader = reader_on(session, [lists["alerts"]])
    sent = sent_to(session, reader, [lists["alerts"]], status=AlertStatus.SENDING)
    policy = BouncePolicy(sender_fault_limit=3)
    for n in range(1, 4):
        bounce = act(
            finding(sent, BounceClass.SENDER_FAULT, "5.7.1", f"blocked #{n}"), None, policy
        )
    assert bounce.action == "notice; alert paused"
    refresh(session)
    alert = session.get(Alert, sent.alert.id)
    assert alert.status == AlertStatus.PAUSED and "not the readers" in alert.status_reason
    [notice] = session.scalars(select(AdminNotice))
    assert (notice.count, notice.alert_id, notice.detail) == (3, alert.id, "blocked #3")
    assert suppressed(session) == {}
    assert subscription_states(session, reader.email) == {"alerts": "subscribed"}


@pytest.mark.parametrize("klass", [BounceClass.DELAY, BounceClass.AUTOREPLY])
def test_delays_and_autoreplies_are_recorded_and_ignored(session, sent, klass):
    assert act(finding(sent, klass)).action == "ignored"
    assert suppressed(session) == {}
    assert session.scalar(select(func.count()).select_from(Bounce)) == 1


def test_evidence_is_deleted_after_thirty_days(session, sent):
    old = act(finding(sent, BounceClass.DELAY), now=utcnow() - timedelta(days=31))
    new = act(finding(sent, BounceClass.DELAY))
    with session_scope() as s:
        assert retention.purge_expired(s)["evidence_purged"] == 1
    refresh(session)
    assert session.get(Bounce, old.id).evidence is None
    assert session.get(Bounce, new.id).evidence is not None


def test_owners_edit_the_policy_audited_and_a_bad_form_keeps_what_was_typed(client, session, login):
    login(client, "owner")
    page = client.get("/admin/settings/bounces").get_data(as_text=True)
    assert 'name="soft_limit"' in page and 'value="3"' in page
    form = {
        "csrf_token": csrf_from(page),
        "soft_limit": "4",
        "soft_window_days": "20",
        "success_quiet_hours": "48",
        "sender_fault_limit": "0",
        "sender_fault_window_minutes": "10",
    }
    refused = client.post("/admin/settings/bounces", data=form)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'value="20"' in html and "from 1 to 1000" in html
    refresh(session)
    assert load_policy(session) == BouncePolicy()
    form["sender_fault_limit"] = "8"
    assert client.post("/admin/settings/bounces", data=form).status_code == 302
    refresh(session)
    assert load_policy(session) == BouncePolicy(4, 20, 48, 8, 10)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.bounce_policy"))
    assert event.detail["old"]["soft_limit"] == 3 and event.detail["new"]["soft_limit"] == 4


def test_editors_may_not_change_the_policy(client, login):
    login(client, "editor")
    assert client.get("/admin/settings/bounces").status_code == 403
    assert client.post("/admin/settings/bounces", data={"soft_limit": "1"}).status_code in (
        400,
        403,
    )


def test_the_subscriber_page_shows_each_action_with_its_evidence(client, session, login, sent):
    act(finding(sent, BounceClass.SOFT, "4.2.2", "mailbox full"))
    bounce = act(finding(sent, BounceClass.HARD, "5.1.1", "mailbox does not exist"))
    login(client, "owner")
    page = client.get(f"/admin/subscribers/{sent.reader.id}").get_data(as_text=True)
    assert "counted 1 of 3" in page and "suppressed" in page and "mailbox does not exist" in page
    assert "Soft bounces counting now: 1 of 3" in page
    evidence = client.get(f"/admin/bounces/{bounce.id}/evidence")
    assert evidence.status_code == 200 and evidence.mimetype == "text/plain"
    assert evidence.get_data().startswith(b"Subject: the report itself")
    # Lifting the suppression lets mail go to the address again.
    token = csrf_from(page)
    client.post(f"/admin/subscribers/{sent.reader.id}/lift-suppression", data={"csrf_token": token})
    assert suppressed(session) == {}


def test_viewers_see_bounces_but_not_their_evidence(client, login, sent):
    bounce = act(finding(sent, BounceClass.HARD, "5.1.1"))
    login(client, "viewer")
    assert client.get(f"/admin/subscribers/{sent.reader.id}").status_code == 200
    assert client.get(f"/admin/bounces/{bounce.id}/evidence").status_code == 403


def test_notices_show_on_the_dashboard_until_dismissed(client, session, login, sent):
    act(finding(sent, BounceClass.SENDER_FAULT, "5.7.26", "DMARC policy"))
    login(client, "owner")
    page = client.get("/admin/").get_data(as_text=True)
    assert "was refused" in page and "DMARC policy" in page
    [notice] = session.scalars(select(AdminNotice))
    response = client.post(
        f"/admin/notices/{notice.id}/dismiss", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302
    assert "DMARC policy" not in client.get("/admin/").get_data(as_text=True)
    refresh(session)
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "notice.dismiss"))


def test_hard_bounce_of_an_already_suppressed_address_keeps_the_first_reason(session, sent):
    session.add(Suppression(email=sent.reader.email, reason=SuppressionReason.MANUAL))
    session.commit()
    assert act(finding(sent, BounceClass.HARD, "5.1.1")).action == "already suppressed"
    assert suppressed(session) == {"reader@example.org": "manual"}


def test_two_workers_counting_the_same_day_count_once(session, sent):
    # A records a soft bounce and has not committed when B records another for the address:
    # B waits (for the row on PostgreSQL, for the write lock on SQLite), then counts nothing.
    import threading

    from clarion.db import session_factory

    first = session_factory()()
    bounce_rules.act(first, finding(sent, BounceClass.SOFT), POLICY)
    first.flush()
    second_action: list[str] = []
    worker = threading.Thread(
        target=lambda: second_action.append(act(finding(sent, BounceClass.SOFT)).action)
    )
    worker.start()
    worker.join(0.5)
    first.commit()
    first.close()
    worker.join(30)
    assert second_action == ["not counted: counted today"]
    refresh(session)
    assert session.scalar(select(func.count()).where(Bounce.counted_on.is_not(None))) == 1


def test_a_refusal_after_another_worker_paused_the_alert_stops_this_batch_too(session, lists):
    reader = reader_on(session, [lists["alerts"]])
    paused = sent_to(session, reader, [lists["alerts"]], status=AlertStatus.PAUSED)
    finished = sent_to(session, reader, [lists["alerts"]], status=AlertStatus.SENT)
    with session_scope() as s:
        assert bounce_rules.sender_fault(s, paused.alert.id, "550 5.7.1", POLICY, immediate=True)
        # A report that arrives after the send is over pauses nothing.
        assert not bounce_rules.sender_fault(
            s, finished.alert.id, "550 5.7.1", POLICY, immediate=True
        )
    refresh(session)
    assert session.get(Alert, finished.alert.id).status == AlertStatus.SENT


def test_a_single_sender_fault_is_a_notice_to_owners(session, lists):
    reader = reader_on(session, [lists["alerts"]])
    sent = sent_to(session, reader, [lists["alerts"]], status=AlertStatus.SENDING)
    bounce = act(finding(sent, BounceClass.SENDER_FAULT, "5.7.1", "blocked"))
    assert bounce.action == "notice to owners"


def test_what_is_stored_is_cut_to_the_columns(session, sent):
    status, reason = "5.1.1." + "9" * 40, "why " * 1000
    bounce = act(finding(sent, BounceClass.HARD, status, reason))
    assert (bounce.status_code, bounce.reason) == (status[:16], reason[:2000])


def test_soft_bounces_are_counted_once_a_day_per_address_not_for_everyone(session, sent, lists):
    other = sent_to(session, reader_on(session, [lists["alerts"]], "other@example.org"), [])
    day = utcnow() - timedelta(days=3)
    assert act(finding(sent, BounceClass.SOFT), now=day).action == "counted 1 of 3"
    assert act(finding(other, BounceClass.SOFT), now=day).action == "counted 1 of 3"


def test_the_window_and_the_quiet_time_at_their_edges(session, sent, lists):
    reader = sent.reader
    start = utcnow() - timedelta(days=30)
    assert bounce_rules.soft_count(session, reader.email, reader.id, POLICY, start) == 0
    act(finding(sent, BounceClass.SOFT), now=start)
    refresh(session)
    window = timedelta(days=POLICY.soft_window_days)
    # Received exactly a window ago: out of it; a moment later: in it.
    at_edge = start + window
    assert bounce_rules.soft_count(session, reader.email, None, POLICY, at_edge) == 0
    assert bounce_rules.soft_count(session, reader.email, None, POLICY, at_edge - EPSILON) == 1
    # A delivery is a success once exactly the quiet time has passed in silence.
    quiet = timedelta(hours=POLICY.success_quiet_hours)
    later = sent_to(session, reader, [lists["alerts"]], sent_at=start + timedelta(days=1))
    sent_at = later.delivery.sent_at
    assert bounce_rules.last_success(session, reader.id, POLICY, sent_at + quiet) == sent_at
    assert bounce_rules.last_success(session, reader.id, POLICY, sent_at + quiet - EPSILON) != (
        sent_at
    )


EPSILON = timedelta(seconds=1)


def test_one_sender_fault_below_the_limit_pauses_nothing_and_opens_the_window(session, lists):
    reader = reader_on(session, [lists["alerts"]])
    sent = sent_to(session, reader, [lists["alerts"]], status=AlertStatus.SENDING)
    policy = BouncePolicy(sender_fault_limit=5, sender_fault_window_minutes=10)
    with session_scope() as s:
        assert bounce_rules.sender_fault(s, sent.alert.id, "550 5.7.1", policy) is False
        assert bounce_rules.sender_fault(s, 987654, "550 5.7.1", policy, immediate=True) is False
    refresh(session)
    assert session.get(Alert, sent.alert.id).status == AlertStatus.SENDING
    # The count runs for the window from the first refusal, and the second does not prolong it.
    key = f"clarion:sender-fault:{sent.alert.id}"
    assert 590 < get_redis().ttl(key) <= 600
    get_redis().expire(key, 100)
    with session_scope() as s:
        bounce_rules.sender_fault(s, sent.alert.id, "550 5.7.1", policy)
    assert get_redis().ttl(key) <= 100


def test_a_complaint_by_address_alone_reaches_that_reader_only(session, sent, lists):
    other = reader_on(session, [lists["alerts"]], "other@example.org")
    report = finding(sent, BounceClass.COMPLAINT)
    report = replace(report, subscriber_id=None)
    act(report)
    assert subscription_states(session, sent.reader.email) == {
        "alerts": "unsubscribed",
        "news": "unsubscribed",
    }
    assert subscription_states(session, other.email) == {"alerts": "subscribed"}
    [record] = session.scalars(select(ConsentRecord).where(ConsentRecord.action == "complaint"))
    assert record.subscriber_id == sent.reader.id


def test_a_complaint_from_someone_on_no_list_is_on_record_once(session, sent):
    act(finding(sent, BounceClass.COMPLAINT))  # leaves the lists: that is the record
    act(replace(finding(sent, BounceClass.COMPLAINT), source="imap"))  # on no list: its own
    refresh(session)
    records = list(session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)))
    assert [(r.action, r.source) for r in records] == [("complaint", "smtp"), ("complaint", "imap")]


def test_the_suppression_says_why_in_the_report_s_words(session, sent):
    act(finding(sent, BounceClass.HARD, "5.1.1", "mailbox does not exist " + "x" * 3000))
    refresh(session)
    detail = session.scalar(select(Suppression.detail))
    assert detail.startswith("5.1.1 mailbox does not exist x") and len(detail) == 2000


def test_a_paused_alert_and_its_notice_say_what_happened(session, lists):
    short = make_alert(session, [lists["alerts"]], status=AlertStatus.SENDING, name="Day 9")
    long = make_alert(session, [lists["alerts"]], status=AlertStatus.SENDING, name="")
    with session_scope() as s:
        assert bounce_rules.sender_fault(s, short.id, "550 5.7.1 blocked", POLICY, immediate=True)
        detail = "550 5.7.1 blocked " + "x" * 3000
        assert bounce_rules.sender_fault(s, long.id, detail, POLICY, immediate=True)
    refresh(session)
    assert session.get(Alert, short.id).status_reason == (
        "Paused: our messages were refused for a policy or authentication reason "
        "(550 5.7.1 blocked). The problem is our sending — sender address, DKIM or SPF, the "
        "relay login or our reputation — not the readers. Fix it, then resume."
    )
    assert len(session.get(Alert, long.id).status_reason) == 2000
    notices = {n.alert_id: n for n in session.scalars(select(AdminNotice))}
    assert notices[short.id].kind == "sender_fault"  # rows already stored keep their meaning
    assert notices[short.id].title == "Our sending of “Day 9” was refused"
    assert notices[long.id].title == f"Our sending of “{long.subject}” was refused"
    assert len(notices[long.id].detail) == 2000


def test_dismissing_a_notice_once_records_who_and_a_second_time_is_refused(
    session, sent, make_editor
):
    owner = make_editor("owner")[0]
    act(finding(sent, BounceClass.SENDER_FAULT, "5.7.26", "DMARC policy"))
    refresh(session)
    [notice] = session.scalars(select(AdminNotice))
    with session_scope() as s:
        bounce_rules.dismiss_notice(s, s.get(Editor, owner.id), notice.id, "192.0.2.1")
    refresh(session)
    notice = session.get(AdminNotice, notice.id)
    assert notice.dismissed_by_id == owner.id and notice.dismissed_at is not None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "notice.dismiss"))
    assert event.target == f"notice:{notice.id}"
    with session_scope() as s, pytest.raises(NotFound) as gone:
        bounce_rules.dismiss_notice(s, s.get(Editor, owner.id), notice.id, None)
    assert str(gone.value) == "This notice is gone (perhaps dismissed already)."


def test_the_dashboard_shows_the_twenty_newest_notices(session, lists):
    for n in range(21):
        alert = make_alert(session, [lists["alerts"]], status=AlertStatus.SENDING, name=f"A{n}")
        with session_scope() as s:
            bounce_rules.sender_fault(s, alert.id, f"refused #{n}", POLICY)
    refresh(session)
    shown = bounce_rules.open_notices(session)
    assert len(shown) == 20 and "refused #0" not in {n.detail for n in shown}
