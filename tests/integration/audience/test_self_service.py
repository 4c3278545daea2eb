"""A reader's own data and erasure from the preference centre: the data goes only by mail, as an
expiring link; erasure asks for a press first."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from clarion import throttle, tokens
from clarion.audience import disclosure
from clarion.models import AuditEvent, ConsentRecord, Subscriber, Suppression
from tests.helpers import csrf_from, refresh


@pytest.fixture
def prefs(subscribed):
    return f"/preferences/{tokens.preferences_token(subscribed.uid)}"


def test_the_data_link_goes_by_mail_and_downloads_everything_held(
    client, session, prefs, subscribed, worker, smtp_sink
):
    page = client.get(prefs).text
    assert 'id="send-my-data"' in page
    response = client.post(f"{prefs}/data", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 200 and "sending a link" in response.text
    assert "reader@example.org" not in response.text  # the page itself shows nothing
    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["reader@example.org"]
    link = re.search(r"http://127\.0\.0\.1:\d+(/your-data/\S+)", mail.text).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert "attachment" in download.headers["Content-Disposition"]
    assert "no-store" in download.headers["Cache-Control"]
    data = json.loads(download.data)
    assert data["reader"]["email"] == "reader@example.org"
    assert {s["list"]: s["status"] for s in data["subscriptions"]} == {
        "Urgent alerts": "subscribed",
        "Newsletter": "subscribed",
    }


def test_pressing_again_at_once_sends_no_second_mail(client, prefs, subscribed, monkeypatch):
    queued = []
    monkeypatch.setattr("webapp.public.preferences.send_data_link.delay", queued.append)
    page = client.get(prefs).text
    for _ in range(3):
        client.post(f"{prefs}/data", data={"csrf_token": csrf_from(page)})
    assert queued == [subscribed.id]


def test_a_data_link_expires(client, subscribed, monkeypatch):
    import itsdangerous.timed as timed

    link = f"/your-data/{disclosure.data_token(subscribed)}"
    assert client.get(link).status_code == 200
    real = timed.time.time
    later = real() + disclosure.DATA_LINK_TTL_HOURS * 3600 + 1
    monkeypatch.setattr(timed.time, "time", lambda: later)
    response = client.get(link)
    assert response.status_code != 200 and "reader@example.org" not in response.text


def test_a_preferences_token_is_not_a_data_token(client, subscribed):
    response = client.get(f"/your-data/{tokens.preferences_token(subscribed.uid)}")
    assert response.status_code != 200 and "reader@example.org" not in response.text


def test_a_reader_erases_themselves_after_a_confirmation_press(client, session, prefs, subscribed):
    reader_id = subscribed.id
    ask = client.get(f"{prefs}/erase")
    assert ask.status_code == 200 and 'id="erase"' in ask.text
    refresh(session)
    assert session.get(Subscriber, reader_id) is not None  # a GET erases nothing
    done = client.post(f"{prefs}/erase", data={"csrf_token": csrf_from(ask.text)})
    assert done.status_code == 200 and 'id="erased"' in done.text
    refresh(session)
    assert session.get(Subscriber, reader_id) is None
    assert session.scalar(select(Suppression)).email is None
    assert all(c.subscriber_id is None for c in session.scalars(select(ConsentRecord)))
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "subscriber.erase_self"))
    assert event.detail == {"email_hash": throttle.address_key("reader@example.org")}
    assert event.ip is None
    # The preferences link of an erased reader leads nowhere.
    assert client.get(prefs).status_code == 404


def test_erasing_needs_the_form_token(client, session, prefs, subscribed):
    client.post(f"{prefs}/erase", data={})
    refresh(session)
    assert session.get(Subscriber, subscribed.id) is not None
