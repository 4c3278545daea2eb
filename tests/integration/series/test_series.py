"""Series on the database: a goal met mid-way, step conditions, readers who leave, pause and
resume, ticks that run twice or at once, circular triggers, and each trigger entering once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from clarion.db import utcnow
from clarion.delivery import sending
from clarion.errors import InvalidTransition, ValidationError
from clarion.models import (
    Alert,
    Click,
    Series,
    SeriesEntry,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.series import editing, entering, stats
from clarion.series import tick as series_tick
from tests.helpers import refresh
from tests.integration.series.serieskit import (
    enter,
    enter_for_the_tick,
    is_step,
    ledger,
    make_series,
    sign,
    states,
    step_alerts,
    world,
)

DAY = timedelta(days=1)

# The tick publishes the steps' sends: kept, not run (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("kept_tasks")


def tick(at):
    return series_tick.tick(at)


def test_a_three_step_series_stops_for_a_reader_who_meets_the_goal_after_step_one(
    session, make_editor
):
    editor = make_editor("editor")[0]
    ml, (ana, ben, cat), petition = world(session)
    series = make_series(
        session, editor, ml, [0, 24, 48], goal={"type": "signed", "petition": petition.id}
    )
    assert all(is_step(session.get(Alert, a)) for a in step_alerts(session, series))
    enter(session, series, [ana, ben])
    t0 = utcnow()

    tick(t0)
    assert ledger(session, series) == [{ana, ben}, set(), set()]
    sign(session, petition, ana)  # Ana signs after step 1
    tick(t0 + DAY / 2)  # step 2 is not due yet
    assert ledger(session, series) == [{ana, ben}, set(), set()]
    tick(t0 + DAY + timedelta(minutes=1))
    assert ledger(session, series) == [{ana, ben}, {ben}, set()]
    tick(t0 + 4 * DAY)
    assert ledger(session, series) == [{ana, ben}, {ben}, {ben}]
    assert states(session, series) == {ana: "goal", ben: "finished"}
    assert cat not in states(session, series)  # never entered: gets nothing

    counts = stats.entry_counts(session, series.id)
    assert counts == {"active": 0, "finished": 1, "left": 0, "goal": 1}
    figures = stats.step_stats(session, editing.steps_of(session, series.id))
    assert [f.alert.subject for f in figures] == ["Step 1", "Step 2", "Step 3"]


def test_a_step_condition_skips_that_step_only(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, ben, _cat), _petition = world(session)
    session.execute(update(Subscriber).where(Subscriber.id == ben).values(language="ru"))
    session.commit()
    only_ru = {"type": "language", "languages": ["ru"]}
    series = make_series(session, editor, ml, [0, 0, 0], conditions=[None, only_ru, None])
    enter(session, series, [ana, ben])

    tick(utcnow())
    assert ledger(session, series) == [{ana, ben}, {ben}, {ana, ben}]
    assert states(session, series) == {ana: "finished", ben: "finished"}


def test_a_reader_who_unsubscribes_leaves_and_gets_nothing_more(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, ben, _cat), _petition = world(session)
    series = make_series(session, editor, ml, [0, 24])
    enter(session, series, [ana, ben])
    t0 = utcnow()
    tick(t0)
    session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id == ana)
        .values(status=SubscriptionStatus.UNSUBSCRIBED)
    )
    session.commit()
    tick(t0 + 2 * DAY)
    assert ledger(session, series) == [{ana, ben}, {ben}]
    assert states(session, series) == {ana: "left", ben: "finished"}


def test_a_paused_series_lets_readers_wait_and_sends_once_resumed(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, _ben, _cat), _petition = world(session)
    series = make_series(session, editor, ml, [0, 24])
    enter(session, series, [ana])
    t0 = utcnow()
    tick(t0)
    editing.pause(session, editor, series)
    session.commit()
    tick(t0 + 2 * DAY)
    assert ledger(session, series) == [{ana}, set()]
    editing.resume(session, editor, series)
    session.commit()
    tick(t0 + 2 * DAY)
    assert ledger(session, series) == [{ana}, {ana}]


def test_ticks_run_again_at_the_same_moment_send_nothing_twice(session, make_editor):
    editor = make_editor("editor")[0]
    ml, readers, _petition = world(session, 5)
    series = make_series(session, editor, ml, [0, 0])
    enter_for_the_tick(session, editor, series, readers)
    now = utcnow()
    first = tick(now)
    assert sorted(len(ids) for _a, ids in first) == [5, 5]
    assert tick(now) == [] and tick(now + DAY) == []
    refresh(session)
    for alert_id in step_alerts(session, series):
        assert session.get(Alert, alert_id).recipients == 5


def test_a_reader_enters_once_however_often_the_trigger_fires(session, make_editor, published):
    editor = make_editor("editor")[0]
    ml, (ana, _ben, _cat), _petition = world(session)
    series = make_series(session, editor, ml, [0])
    enter(session, series, [ana, ana])
    entering.enter_joined(session, ana, [ml.id])
    session.commit()
    tick(utcnow())
    enter(session, series, [ana])  # confirms again after finishing: nothing new
    tick(utcnow() + DAY)
    assert ledger(session, series) == [{ana}]
    assert session.scalar(select(SeriesEntry.id).where(SeriesEntry.subscriber_id == ana))


def test_only_subscribed_readers_enter(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, _ben, _cat), _petition = world(session)
    session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id == ana)
        .values(status=SubscriptionStatus.PENDING)
    )
    session.commit()
    series = make_series(session, editor, ml, [0])
    enter(session, series, [ana])
    assert states(session, series) == {}


def test_signers_of_the_petition_enter_its_series(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, ben, _cat), petition = world(session)
    series = make_series(session, editor, ml, [0], trigger="signed", petition_id=petition.id)
    from clarion.models import Signature

    sign(session, petition, ana)  # a row alone enters no one: signing does
    entering.enter_signed(session, session.scalar(select(Signature)))
    session.commit()
    tick(utcnow())
    assert ledger(session, series) == [{ana}]
    assert ben not in states(session, series)


def test_readers_who_clicked_the_trigger_alert_enter_at_the_tick(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, ben, cat), _petition = world(session)
    source = Alert(kind="newsletter", subject="Source", fields={}, audience={})
    session.add(source)
    session.flush()
    session.add(Click(alert_id=source.id, subscriber_id=cat, link_index=0))  # before: no
    session.commit()
    series = make_series(session, editor, ml, [0], trigger="clicked", alert_id=source.id)
    session.add_all(
        [
            Click(alert_id=source.id, subscriber_id=ana, link_index=0),
            Click(alert_id=source.id, subscriber_id=ana, link_index=1),
            Click(alert_id=source.id, subscriber_id=ben, link_index=0, suspected_scanner=True),
        ]
    )
    session.commit()
    tick(utcnow() + timedelta(seconds=1))
    assert ledger(session, series) == [{ana}]
    assert states(session, series) == {ana: "finished"}


def test_a_series_triggered_by_its_own_step_is_refused_naming_the_alert(session, make_editor):
    editor = make_editor("editor")[0]
    ml, _readers, _petition = world(session)
    series = make_series(session, editor, ml, [0])
    own = step_alerts(session, series)[0]
    values = editing.SeriesValues(name="Journey", list_id=ml.id, trigger="clicked", alert_id=own)
    with pytest.raises(ValidationError) as refused:
        editing.update(session, editor, series, values)
    assert f"Alert {own} is sent by this series" in refused.value.errors["alert_id"]
    session.rollback()
    # Through a second series: A's step triggers B, B's step would trigger A.
    other = editing.create(
        session,
        editor,
        editing.SeriesValues(name="Second", list_id=ml.id, trigger="clicked", alert_id=own),
    )
    editing.add_step(session, editor, other, editing.StepValues())
    theirs = step_alerts(session, other)[0]
    values = editing.SeriesValues(name="Journey", list_id=ml.id, trigger="clicked", alert_id=theirs)
    with pytest.raises(ValidationError) as refused:
        editing.update(session, editor, session.get(Series, series.id), values)
    assert f"Alert {theirs}" in refused.value.errors["alert_id"]


def test_a_step_alert_is_not_sent_on_its_own(session, make_editor):
    editor = make_editor("editor")[0]
    ml, _readers, _petition = world(session)
    series = editing.create(
        session, editor, editing.SeriesValues(name="Journey", list_id=ml.id, trigger="joined")
    )
    step = editing.add_step(session, editor, series, editing.StepValues(kind="newsletter"))
    alert = session.get(Alert, step.alert_id)
    alert.subject, alert.fields = "Hello", {"body_md": "Hi"}
    with pytest.raises(InvalidTransition):
        sending.start(session, alert, editor)


def test_a_draft_step_holds_readers_until_it_is_ready(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, _ben, _cat), _petition = world(session)
    series = make_series(session, editor, ml, [0])
    step = editing.add_step(session, editor, series, editing.StepValues())
    session.commit()
    enter(session, series, [ana])
    tick(utcnow())
    assert ledger(session, series) == [{ana}, set()]
    with pytest.raises(ValidationError) as refused:
        editing.ready_step(session, editor, series, step.id)
    assert "Step 2 cannot be sent yet" in refused.value.errors["step"]
    alert = session.get(Alert, step.alert_id)
    alert.subject, alert.fields = "Second", {"body_md": "Again"}
    editing.ready_step(session, editor, series, step.id)
    session.commit()
    tick(utcnow())
    assert ledger(session, series) == [{ana}, {ana}]


def test_replacing_a_ready_step_makes_a_draft_copy_and_the_old_alert_finishes(session, make_editor):
    editor = make_editor("editor")[0]
    ml, _readers, _petition = world(session)
    series = make_series(session, editor, ml, [0])
    old = step_alerts(session, series)[0]
    copy = editing.replace_step(session, editor, series, editing.steps_of(session, series.id)[0].id)
    session.commit()
    assert copy.status.value == "draft" and copy.subject == "Step 1"
    assert step_alerts(session, series) == [copy.id]
    from clarion.delivery import dispatch

    assert dispatch.finish_if_done(old) is True  # no longer used by a step: it can finish


def test_ticks_racing_in_several_processes_send_each_step_once(session, backend, make_editor):
    from tests.integration.delivery.test_schedules import racers

    editor = make_editor("editor")[0]
    ml, readers, _petition = world(session, 40)
    series = make_series(session, editor, ml, [0, 0, 0])
    enter_for_the_tick(session, editor, series, readers)
    results = racers(backend, "series", 4)
    written = sorted(i for r in results for _alert, ids in r["claimed"] for i in ids)
    assert len(written) == len(set(written)) == 3 * 40
    assert ledger(session, series) == [set(readers)] * 3
    assert set(states(session, series).values()) == {"finished"}
    refresh(session)
    assert [session.get(Alert, a).recipients for a in step_alerts(session, series)] == [40] * 3
