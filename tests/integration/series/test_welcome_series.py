"""The list welcome mail as a one-step series: a first step without delay goes in the confirming
transaction, and 0019 turns each list's welcome mail into such a series (and back)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from clarion import schema
from clarion.alerts import campaigns
from clarion.audience import lists, subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.config import reset_settings
from clarion.db import get_engine, session_factory, utcnow
from clarion.delivery import sending
from clarion.editors import create_editor
from clarion.models import (
    Alert,
    AlertRole,
    ConsentRecord,
    Delivery,
    MailingList,
    Role,
    Series,
    SeriesStep,
    Subscriber,
)
from clarion.series import editing, entering
from clarion.series import tick as series_tick
from tests.integration.series.serieskit import ledger, make_series, sign, states, world
from tests.sendkit import make_audience, make_list

DAY = timedelta(days=1)

# Entering and the tick publish the steps' sends: kept, not run (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("kept_tasks")


def test_a_first_step_without_delay_is_queued_by_the_confirmation_and_never_again(
    session, make_editor
):
    editor = make_editor("editor")[0]
    ml, (ana, ben, _cat), _petition = world(session)
    series = make_series(session, editor, ml, [0, 24])
    queued = entering.enter_joined(session, ana, [ml.id])
    session.commit()
    assert queued == [(_first_alert(session, series), _delivery_of(session, ana))]
    assert ledger(session, series) == [{ana}, set()]  # before any tick, only the confirmed
    assert entering.enter_joined(session, ana, [ml.id]) == []  # once per trigger
    session.commit()
    assert series_tick.tick(utcnow()) == []  # the tick does not send step 1 again
    assert ledger(session, series) == [{ana}, set()]
    assert states(session, series) == {ana: "active"}
    series_tick.tick(utcnow() + DAY + timedelta(minutes=1))
    assert ledger(session, series) == [{ana}, {ana}]
    assert states(session, series) == {ana: "finished"}
    assert session.get(Alert, _first_alert(session, series)).recipients == 1
    assert ben not in ledger(session, series)[0]


def test_a_paused_series_or_an_unmet_condition_sends_nothing_at_once(session, make_editor):
    editor = make_editor("editor")[0]
    ml, (ana, ben, cat), petition = world(session)
    signed = {"type": "signed", "petition": petition.id}
    series = make_series(session, editor, ml, [0, 24], conditions=[signed, None])
    sign(session, petition, ana)
    sign(session, petition, cat)
    assert entering.enter_joined(session, ana, [ml.id]) != []  # she meets the condition
    assert entering.enter_joined(session, ben, [ml.id]) == []  # he does not: skips step 1
    session.commit()
    assert ledger(session, series) == [{ana}, set()]
    assert states(session, series) == {ana: "active", ben: "active"}
    editing.pause(session, editor, series)
    session.commit()
    assert entering.enter_joined(session, cat, [ml.id]) == []  # paused: the tick sends later
    session.commit()
    assert ledger(session, series) == [{ana}, set()]
    editing.resume(session, editor, series)
    session.commit()
    series_tick.tick(utcnow())
    assert ledger(session, series) == [{ana, cat}, set()]


def _first_alert(session, series) -> int:
    return session.scalar(
        select(SeriesStep.alert_id)
        .where(SeriesStep.series_id == series.id)
        .order_by(SeriesStep.position)
        .limit(1)
    )


def _delivery_of(session, reader) -> int:
    return session.scalar(select(Delivery.id).where(Delivery.subscriber_id == reader))


# --- the migration ------------------------------------------------------------------------


@pytest.fixture
def old_database(backend, request, tmp_path, monkeypatch, settings):
    """A database at the revision before 0019_series (0020_segment_indexes), the one Clarion
    uses for this test."""
    if backend.name == "postgresql":
        url = request.getfixturevalue("pg_server").create_database("clarion_welcome_upgrade")
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    schema.upgrade(url, "0020_segment_indexes")
    monkeypatch.setenv("CLARION_DATABASE_URL", url)
    reset_settings()
    yield url
    get_engine(url).dispose()


def _old_welcome(s, editor) -> tuple[MailingList, Alert, int]:
    """A list with a welcome mail as lists.set_welcome made it before 0019, and a reader who
    had it already."""
    ml = make_list(s, "alerts", name="Urgent alerts")
    draft = campaigns.create_draft(
        s,
        editor,
        campaigns.Draft(kind="newsletter", subject="Welcome", fields={"body_md": "Thank you."}),
    )
    audience = {"lists": [ml.id], "tags": [], "languages": []}
    draft.audience, draft.sender_list_id, draft.role = audience, ml.id, AlertRole.WELCOME.value
    sending.freeze_alert(s, draft, audience)
    now = utcnow()
    sending.transition(s, draft, "start", started_at=now, dispatched_at=now)
    s.execute(
        text("UPDATE lists SET welcome_alert_id = :a WHERE id = :l"), {"a": draft.id, "l": ml.id}
    )
    (old_reader,) = make_audience(s, ml, 1, prefix="old")
    s.add(Delivery(alert_id=draft.id, subscriber_id=old_reader, status="sent"))
    s.commit()
    return ml, draft, old_reader


def test_0019_turns_a_list_welcome_into_a_one_step_series_that_welcomes_once(old_database):
    s = session_factory(old_database)()
    editor = create_editor(s, "owner@example.org", Role.OWNER, "correct horse battery staple")[0]
    ml, draft, old_reader = _old_welcome(s, editor)
    s.close()

    schema.upgrade(old_database)
    s = session_factory(old_database)()
    series = s.scalars(select(Series)).one()
    assert (series.list_id, series.trigger, series.status, series.welcome) == (
        ml.id, "joined", "active", True,
    )  # fmt: skip
    step = s.scalars(select(SeriesStep)).one()
    assert (step.series_id, step.alert_id, step.delay_seconds, step.conditions) == (
        series.id, draft.id, 0, None,
    )  # fmt: skip
    assert lists.welcome_alert_id(s, s.get(MailingList, ml.id)) == draft.id
    assert s.execute(text("SELECT welcome_alert_id FROM lists")).scalar() is None

    outcome = subscribers.subscribe(s, SubscribeRequest("ana@example.org", [ml.id]))
    s.commit()
    token = subscribers.confirm_token(s.get(ConsentRecord, outcome.consent_id))
    confirmed = subscribers.confirm(s, token, None)
    s.commit()
    ana = s.scalar(select(Subscriber.id).where(Subscriber.email == "ana@example.org"))
    assert [alert for alert, _id in confirmed.welcomes] == [draft.id]
    assert entering.enter_joined(s, ana, [ml.id]) == []  # confirming again: nothing more
    assert entering.enter_joined(s, old_reader, [ml.id]) == []  # had it before the upgrade
    s.commit()
    assert series_tick.tick(utcnow() + DAY) == []
    rows = s.execute(
        select(Delivery.subscriber_id, func.count())
        .where(Delivery.alert_id == draft.id)
        .group_by(Delivery.subscriber_id)
    ).all()
    assert sorted(rows) == sorted([(ana, 1), (old_reader, 1)])
    s.close()

    schema.downgrade(old_database, "0020_segment_indexes")  # the list gets its welcome back
    with get_engine(old_database).connect() as conn:
        assert conn.execute(text("SELECT welcome_alert_id FROM lists")).scalar() == draft.id
