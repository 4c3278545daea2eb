"""The send state machine checks the actor's role itself: no adapter can forget to."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clarion.delivery import sending
from clarion.errors import Forbidden
from clarion.models import Alert, AlertStatus, AuditEvent
from tests.sendkit import make_alert, make_audience, make_list


@pytest.fixture(params=["viewer", "deactivated editor"])
def outsider(request, session, make_editor):
    """An account that may not send: a viewer, or an editor whose account was switched off."""
    if request.param == "viewer":
        return make_editor("viewer")[0]
    editor = make_editor("editor", "former@example.org")[0]
    editor.is_active = False
    session.commit()
    return editor


def refused(session, action, alert: Alert, outsider) -> None:
    """The outsider's attempt raises Forbidden and changes nothing, not even the audit log."""
    status, alerts, events = alert.status, _count(session, Alert), _count(session, AuditEvent)
    with pytest.raises(Forbidden, match=r"does not allow"):
        action(session, alert, outsider)
    assert (alert.status, _count(session, Alert), _count(session, AuditEvent)) == (
        status,
        alerts,
        events,
    )


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_only_an_actor_who_may_send_changes_a_send(session, make_editor, outsider):
    editor = make_editor("editor")[0]
    alerts = make_list(session)
    make_audience(session, alerts, 3)
    alert = make_alert(session, [alerts])
    steps = [
        (sending.start, AlertStatus.SENDING),
        (sending.pause, AlertStatus.PAUSED),
        (sending.resume, AlertStatus.SENDING),
        (sending.cancel, AlertStatus.CANCELLED),
    ]
    for action, after in steps:
        refused(session, action, alert, outsider)
        action(session, alert, editor)
        session.commit()
        assert alert.status == after

    refused(session, sending.send_to_unreached, alert, outsider)
    follow_up = sending.send_to_unreached(session, alert, editor)
    session.commit()
    assert follow_up.parent_id == alert.id and follow_up.status == AlertStatus.SENDING


def test_the_engine_and_the_command_line_act_without_an_actor(session):
    alerts = make_list(session)
    make_audience(session, alerts, 1)
    alert = make_alert(session, [alerts])
    for action in (sending.start, sending.pause, sending.resume, sending.cancel):
        action(session, alert)
    session.commit()
    assert alert.status == AlertStatus.CANCELLED
