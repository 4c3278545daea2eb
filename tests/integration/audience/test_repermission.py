"""Re-permission: a "stay subscribed?" mail sent for real; its button through the click path to
the stay page (a GET keeps no one, the POST does); after the deadline, readers who neither
stayed nor clicked are unsubscribed with a consent record `inactive`, once, whoever else runs;
readers who stayed, clicked or already left are never touched; the editor's counts."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, insert, select

from clarion import jobqueue, tokens
from clarion.alerts import campaigns, segments
from clarion.audience import repermission
from clarion.config import get_settings, reset_settings
from clarion.db import utcnow
from clarion.delivery import dispatch, sending
from clarion.errors import ValidationError
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Click,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    MailingList,
    Stay,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.tracking import clicks, eventstream
from tests.faultsmtp import FaultServer
from tests.helpers import csrf_from, refresh
from tests.integration.delivery.test_schedules import racers
from tests.sendkit import InlineQueue, make_audience

NAMES = ("stays", "clicks", "scanned", "idle", "leaves")
OLD = utcnow() - timedelta(days=400)


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


def reader(session, name: str, list_id: int) -> int:
    found = Subscriber(uid=f"u-{name}", email=f"{name}@example.org", language="ru",
                       created_at=OLD)  # fmt: skip
    session.add(found)
    session.flush()
    session.add(Subscription(subscriber_id=found.id, list_id=list_id,
                             status=SubscriptionStatus.SUBSCRIBED))  # fmt: skip
    return found.id


@pytest.fixture
def sent(session, queue, monkeypatch):
    """A "stay subscribed?" mail sent to five inactive readers (and not to an active one);
    returns (alert, ids by name, messages by address)."""
    ml = MailingList(slug="alerts", name="Alerts")
    other = Alert(kind=AlertKind.NEWSLETTER, name="Old", subject="Old", fields={"body_md": "x"},
                  audience={}, status=AlertStatus.SENT, frozen_at=OLD,
                  frozen_links=["https://a.example/"])  # fmt: skip
    session.add_all([ml, other])
    session.flush()
    ids = {name: reader(session, name, ml.id) for name in (*NAMES, "active")}
    session.add(Click(alert_id=other.id, subscriber_id=ids["active"], link_index=0,
                      clicked_at=utcnow() - timedelta(days=3)))  # fmt: skip
    session.commit()
    draft = campaigns.Draft(
        kind="newsletter", subject="Still with us?", fields={"body_md": "Tell us."},
        lists=[ml.id], conditions=segments.parse({"type": "inactive", "days": 30}),
    )  # fmt: skip
    alert = repermission.create(session, None, draft, 14)
    session.commit()
    assert alert.stay_days == 14 and campaigns.audience_count(session, alert.audience) == 5
    with FaultServer(keep=True) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        reset_settings()
        sending.start(session, alert)
        session.commit()
        dispatch.enqueue_dispatch(alert.id)
        queue.drain(timeout=60)
        messages = list(server.handler.messages)
    refresh(session)
    alert = session.get(Alert, alert.id)
    assert alert.status == AlertStatus.SENT and alert.recipients == 5
    return alert, ids, messages, other


def stay_link(session, alert: Alert, subscriber_id: int) -> str:
    """Where the mail's "Yes, keep me" button takes this reader: through the click path."""
    base = get_settings().base_url
    n = alert.frozen_links.index(base + tokens.STAY_PATH)
    delivery_id = session.scalar(select(Delivery.id).where(
        Delivery.alert_id == alert.id, Delivery.subscriber_id == subscriber_id))  # fmt: skip
    token = tokens.delivery_tokens(tokens.CLICK).encode(delivery_id)
    followed = clicks.follow(token, str(n), base)
    assert followed.url.startswith(base + tokens.STAY_PATH + "?t=")
    return followed.url[len(base) :]


def test_stay_keeps_who_pressed_or_clicked_and_removes_the_rest_once(
    session, sent, client, monkeypatch
):
    alert, ids, _messages, other = sent
    stay_url = get_settings().base_url + tokens.STAY_PATH
    # The button is in the mail as a tracked link, never the bare address of the page.
    assert stay_url in alert.frozen_links and "Yes, keep me subscribed" in alert.frozen_text
    assert stay_url not in alert.frozen_html and stay_url not in alert.frozen_text
    # "stays" opens the page and presses; "scanned" is opened by a link scanner (a GET only).
    page = client.get(stay_link(session, alert, ids["stays"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="stay"' in html and 'lang="ru"' in html
    token = parse_qs(urlsplit(stay_link(session, alert, ids["stays"])).query)["t"][0]
    pressed = client.post("/stay", data={"t": token, "csrf_token": csrf_from(html)})
    assert pressed.status_code == 200 and 'id="stayed"' in pressed.get_data(as_text=True)
    assert client.get(stay_link(session, alert, ids["scanned"])).status_code == 200
    # "clicks" clicks an old alert's link after the send; "leaves" unsubscribes meanwhile.
    refresh(session)  # the pages wrote since this session last read
    session.add(Click(alert_id=other.id, subscriber_id=ids["clicks"], link_index=0))
    session.execute(
        Subscription.__table__.update()
        .where(Subscription.subscriber_id == ids["leaves"])
        .values(status=SubscriptionStatus.UNSUBSCRIBED)
    )
    session.commit()
    eventstream.flush()
    refresh(session)
    assert repermission.counts(session, alert) == {
        "sent": 5, "stayed": 1, "to_remove": 2, "removed": 0
    }  # fmt: skip
    assert repermission.remove_due() == {}  # before the deadline: no one
    after = alert.started_at + timedelta(days=14, minutes=1)
    assert repermission.remove_due(after) == {alert.id: 2}
    assert repermission.remove_due(after) == {}  # done: a second run finds nothing to do
    refresh(session)
    records = session.execute(
        select(ConsentRecord.subscriber_id, ConsentRecord.source, ConsentRecord.list_ids)
        .where(ConsentRecord.action == "inactive", ConsentRecord.alert_id == alert.id)
    ).all()  # fmt: skip
    list_id = alert.frozen_meta["audience"]["lists"][0]
    assert sorted(records) == sorted(
        (ids[name], "re-permission", [list_id]) for name in ("scanned", "idle")
    )
    states = dict(session.execute(select(Subscription.subscriber_id, Subscription.status)).all())
    assert {n for n in NAMES if states[ids[n]] == SubscriptionStatus.SUBSCRIBED} == {
        "stays", "clicks"
    }  # fmt: skip
    # Who had left already got no second record.
    assert session.scalar(select(func.count()).select_from(ConsentRecord).where(
        ConsentRecord.subscriber_id == ids["leaves"])) == 0  # fmt: skip
    assert repermission.counts(session, refresh_alert(session, alert)) == {
        "sent": 5, "stayed": 1, "to_remove": 0, "removed": 2
    }  # fmt: skip
    # Pressing after being removed keeps no one: the page offers to subscribe again.
    late = client.get(stay_link(session, alert, ids["idle"])).get_data(as_text=True)
    assert 'id="stay-too-late"' in late


def refresh_alert(session, alert: Alert) -> Alert:
    refresh(session)
    return session.get(Alert, alert.id)


def test_a_stay_token_is_signed_and_the_get_keeps_no_one(session, sent, client):
    alert, ids, _messages, _other = sent
    path = stay_link(session, alert, ids["idle"])
    assert client.get(path[:-2] + "xx").status_code in (400, 404)
    assert client.get("/stay?t=forged.token").status_code in (400, 404)
    assert client.get(path).status_code == 200
    assert session.scalar(select(func.count()).select_from(Stay)) == 0


def test_a_stay_mail_without_its_button_is_refused(session, queue):
    ml = MailingList(slug="l", name="L")
    session.add(ml)
    session.flush()
    reader(session, "x", ml.id)
    draft = campaigns.Draft(
        kind="newsletter", subject="Still?", fields={"body_md": "Tell us."}, lists=[ml.id],
        layout_mjml="<mjml><mj-body><mj-section><mj-column><mj-text>{{ body_md_html | safe }}"
                    "</mj-text></mj-column></mj-section></mj-body></mjml>",
    )  # fmt: skip
    alert = repermission.create(session, None, draft, 7)
    session.commit()
    with pytest.raises(ValidationError) as caught:
        sending.start(session, alert)
    assert "Yes, keep me" in caught.value.errors["layout"]
    with pytest.raises(ValidationError) as days:
        repermission.create(session, None, draft, 0)
    assert "stay_days" in days.value.errors


def test_two_beats_racing_remove_each_reader_once(session, backend):
    """Past its deadline, 700 readers to remove (two chunks); four beats race for them."""
    ml = MailingList(slug="many", name="Many")
    session.add(ml)
    session.commit()
    readers_ids = make_audience(session, ml, 700)
    started = utcnow() - timedelta(days=20)
    alert = Alert(kind=AlertKind.NEWSLETTER, name="Still?", subject="Still?",
                  fields={"body_md": "x"}, audience={"lists": [ml.id]},
                  status=AlertStatus.SENT, started_at=started, frozen_at=started,
                  frozen_links=[get_settings().base_url + tokens.STAY_PATH],
                  frozen_meta={"audience": {"lists": [ml.id]}}, stay_days=14)  # fmt: skip
    session.add(alert)
    session.flush()
    session.execute(insert(Delivery), [
        {"alert_id": alert.id, "subscriber_id": i, "status": DeliveryStatus.SENT}
        for i in readers_ids
    ])  # fmt: skip
    session.commit()
    results = racers(backend, "remove_unstayed", 4)
    removed = sum(r["claimed"].get(str(alert.id), 0) for r in results)
    assert removed == 700
    refresh(session)
    per_reader = Counter(session.scalars(select(ConsentRecord.subscriber_id).where(
        ConsentRecord.action == "inactive")))  # fmt: skip
    assert set(per_reader) == set(readers_ids) and set(per_reader.values()) == {1}
    assert session.get(Alert, alert.id).stay_closed_at is not None
    left = session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.status == SubscriptionStatus.SUBSCRIBED))  # fmt: skip
    assert left == 0


def post_form(client, url, data):
    page = client.get("/admin/account").get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def test_the_editor_writes_one_and_sees_its_counts(client, session, login, sent):
    alert, _ids, _messages, _other = sent
    login(client, "editor")
    page = client.get(f"/admin/alerts/{alert.id}").get_data(as_text=True)
    assert '<dd id="stay-sent">5</dd>' in page and '<dd id="stay-to-remove">5</dd>' in page
    form = client.get("/admin/alerts/new-stay").get_data(as_text=True)
    assert 'id="stay-form"' in form
    list_id = alert.frozen_meta["audience"]["lists"][0]
    typed = {"lists": [str(list_id)], "inactive_days": "90", "stay_days": "soon",
             "subject": "Still with us?", "body_md": "Tell us."}  # fmt: skip
    refused = post_form(client, "/admin/alerts/new-stay", typed)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="stay_days-error"' in html and 'value="soon"' in html
    done = post_form(client, "/admin/alerts/new-stay", {**typed, "stay_days": "21"})
    assert done.status_code == 302
    refresh(session)
    made = session.scalar(select(Alert).where(Alert.stay_days == 21))
    assert made.kind == AlertKind.NEWSLETTER and made.status == AlertStatus.DRAFT
    assert made.audience["conditions"] == {"type": "inactive", "days": 90}
    assert done.headers["Location"].endswith(f"/admin/alerts/{made.id}")
