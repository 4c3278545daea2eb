"""No CR/LF typed by an editor (list name, sender name, subject) reaches a header of sent mail."""

from __future__ import annotations

import pytest

from clarion import jobqueue
from clarion.audience import lists
from clarion.delivery import dispatch, sending, testsend
from clarion.errors import ValidationError
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list

EVIL = "Lst\r\nX-Injected: yes"


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


def injected(message) -> bool:
    names = {name.lower() for name, _ in message.headers}
    return "x-injected" in names or "x-evil" in names


@pytest.mark.parametrize("field", ["name", "from_name"])
@pytest.mark.parametrize("bad", [EVIL, "Lst\nX-Injected: yes", "Lst\rX", "Lst\x00", "L\tst"])
def test_a_list_name_with_control_characters_is_refused_on_save(session, field, bad):
    raw = {"name": "Urgent", "slug": "urgent", "from_name": "", field: bad}
    with pytest.raises(ValidationError) as caught:
        lists.create_list(session, raw)
    assert field in caught.value.errors and "control characters" in caught.value.errors[field]


def test_bulk_mail_headers_stay_single_lines(session, smtp_sink, queue):
    # A row written before names were checked (or by hand) still cannot inject a header.
    alerts = make_list(
        session, "alerts", name=EVIL, from_name="Ana\r\nX-Evil: 1", from_email="ana@clarion.test"
    )
    make_audience(session, alerts, 2)
    alert = make_alert(session, [alerts], subject="Day 1000\r\nX-Evil: 2")
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)
    queue.drain()
    refresh(session)
    caught = smtp_sink.wait_for(2)
    assert len(caught) == 2
    for message in caught:
        assert not injected(message)
        assert message.message["List-Id"] == '"Lst X-Injected: yes" <alerts.bounces.clarion.test>'
        assert "Ana X-Evil: 1" in str(message.message["From"])
        assert "X-Evil" in message.subject and "\n" not in message.subject


def test_test_sends_keep_headers_single_lines(session, smtp_sink, make_editor):
    editor, _ = make_editor("editor")
    alerts = make_list(
        session, "alerts", from_name="Ana\r\nX-Evil: 1", from_email="ana@clarion.test"
    )
    alert = make_alert(session, [alerts], subject="Day 1000", sender_list_id=alerts.id)
    testsend.send_test(session, editor, alert, "me@example.org", None)
    session.commit()
    (message,) = smtp_sink.wait_for(1)
    assert not injected(message)
    assert "Ana X-Evil: 1" in str(message.message["From"])
