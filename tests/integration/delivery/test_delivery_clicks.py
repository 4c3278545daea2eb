"""The delivery engine and the click path together: dispatch fills Redis, freeze adds the pixel."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from clarion import jobqueue
from clarion.db import get_engine
from clarion.delivery import dispatch, sending
from clarion.models import Alert
from clarion.tracking import eventstream, opens
from clarion.tracking.linkmap import forget_cached_links
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


def send(session, alert: Alert, queue: InlineQueue) -> Alert:
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)
    queue.drain(timeout=60)
    refresh(session)
    return session.get(Alert, alert.id)


def test_links_in_sent_mail_are_followed_from_redis_alone(
    client, session, settings, smtp_sink, queue
):
    readers = make_list(session)
    make_audience(session, readers, 3)
    alert = send(session, make_alert(session, [readers]), queue)
    mails = smtp_sink.wait_for(3)
    forget_cached_links()  # as in a fresh web process
    statements = []
    engine = get_engine(settings.database_url)

    def count(*_args, **_kwargs):
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for mail in mails:
            for path in re.findall(r"http://127\.0\.0\.1:\d+(/r/[a-z0-9]{26}/\d+)", mail.text):
                response = client.get(path)
                assert response.status_code == 302
                n = int(path.rsplit("/", 1)[1])
                assert response.headers["Location"] == alert.frozen_links[n]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []  # dispatch had put every delivery and link in Redis


def test_the_freeze_adds_an_open_pixel_only_when_an_owner_turned_tracking_on(
    client, session, settings, smtp_sink, queue, make_editor
):
    readers = make_list(session)
    make_audience(session, readers, 1)
    untracked = send(session, make_alert(session, [readers]), queue)
    assert "/o/" not in untracked.frozen_html
    owner, _password = make_editor("owner")
    opens.set_enabled(session, owner, True)
    session.commit()
    tracked = send(session, make_alert(session, [readers], name="Second"), queue)
    assert re.search(
        r'<img src="http://127\.0\.0\.1:\d+/o/\ue000token\ue001\.gif"', tracked.frozen_html
    )
    mails = [m for m in smtp_sink.wait_for(2) if "/o/" in m.html]
    [pixel] = re.findall(r"http://127\.0\.0\.1:\d+(/o/[a-z0-9]{26}\.gif)", mails[0].html)
    assert client.get(pixel).status_code == 200
    assert eventstream.flush().opens == 1
