"""Per-alert stats from real rows, and open tracking: off by default, owners only, approximate."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from clarion.db import utcnow
from clarion.models import (
    AuditEvent,
    Bounce,
    BounceClass,
    ConsentRecord,
    DeliveryStatus,
    Open,
    Signature,
)
from clarion.tracking import eventstream, opens
from tests.helpers import csrf_from, refresh
from tests.integration.alertkit import frozen_alert, make_petition, make_readers, token_of

BLOG = "https://blog.example.org/post"


def figure(html: str, name: str) -> str:
    return re.search(rf'id="stat-{name}">([^<]*)<', html).group(1).strip()


def test_the_stats_page_counts_what_the_alert_achieved(client, session, login, settings):
    login(client, "viewer")
    petition = make_petition(session)
    people = make_readers(session, 6)
    alert, deliveries = frozen_alert(session, [BLOG, f"{settings.base_url}/p/free-them"], people)
    deliveries[4].status, deliveries[4].sent_at = DeliveryStatus.DEFERRED, None
    deliveries[5].status, deliveries[5].sent_at = DeliveryStatus.FAILED, None
    for cls, delivery in [
        (BounceClass.HARD, deliveries[5]),
        (BounceClass.SOFT, deliveries[4]),
        (BounceClass.COMPLAINT, deliveries[3]),
    ]:
        session.add(
            Bounce(source="smtp", delivery_id=delivery.id, alert_id=alert.id, classification=cls)
        )
    session.add(ConsentRecord(subscriber_id=people[3].id, action="unsubscribe", alert_id=alert.id))
    session.add(
        Signature(
            petition_id=petition.id,
            email="reader0@example.org",
            name="R",
            alert_id=alert.id,
            confirmed_at=utcnow(),
        )
    )
    session.commit()
    # Reader 0 clicks both links, twice the first; reader 1 once. Reader 2's mail was scanned.
    for delivery, n in [(0, 0), (0, 0), (0, 1), (1, 0)]:
        client.get(f"/r/{token_of(deliveries[delivery])}/{n}")
    refresh(session)
    deliveries[2].sent_at = utcnow()
    session.commit()
    client.get(f"/r/{token_of(deliveries[2])}/0")
    eventstream.flush()

    html = client.get(f"/admin/alerts/{alert.id}/stats").text
    expected = {
        "recipients": "6",
        "sent": "4",
        "deferred": "1",
        "failed": "1",
        "hard": "1",
        "soft": "1",
        "complaints": "1",
        "unsubscribes": "1",
        "unique-clicks": "2",
        "clicks": "4",
        "scanner-clicks": "1",
        "signatures": "1",
    }
    assert {name: figure(html, name) for name in expected} == expected
    links = re.findall(
        r"<td>(\d+)</td><td><code>([^<]+)</code></td><td>(\d+)</td><td>(\d+)</td>"
        r'<td class="scanner">(\d+)</td>',
        html,
    )
    assert links == [
        ("0", BLOG, "2", "3", "1"),
        ("1", f"{settings.base_url}/p/free-them", "1", "1", "0"),
    ]
    assert "not tracked" in html  # opens: off by default

    data = client.get(f"/admin/alerts/{alert.id}/stats.json").get_json()
    assert sum(data["datasets"]["clicks"]) == 4
    assert sum(data["datasets"]["scanner_clicks"]) == 1
    assert sum(data["datasets"]["signatures"]) == 1
    assert len(data["labels"]) == len(data["datasets"]["clicks"]) >= 1


def test_the_stats_index_lists_sent_alerts(client, session, login):
    login(client, "viewer")
    alert, _ = frozen_alert(session, [BLOG], make_readers(session, 1))
    assert f"/admin/alerts/{alert.id}/stats" in client.get("/admin/stats").text
    assert client.get("/admin/alerts/999/stats").status_code == 404


def test_open_tracking_is_off_by_default_and_the_pixel_records_nothing(client, session):
    _alert, [delivery] = frozen_alert(session, [BLOG], make_readers(session, 1))
    response = client.get(f"/o/{token_of(delivery)}.gif")
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert response.data == opens.PIXEL_GIF
    assert eventstream.backlog() == 0


def test_only_owners_turn_open_tracking_on_and_it_is_audited(app, session, login):
    viewer, owner = app.test_client(), app.test_client()
    login(viewer, "editor")
    assert viewer.get("/admin/settings/tracking").status_code == 403
    login(owner, "owner")
    page = owner.get("/admin/settings/tracking")
    assert "Open tracking is <strong>off</strong>" in page.text
    owner.post(
        "/admin/settings/tracking",
        data={"csrf_token": csrf_from(page.text), "open_tracking": "on"},
    )
    refresh(session)
    assert opens.is_enabled(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.open_tracking"))
    assert (event.detail["old"], event.detail["new"]) == (False, True)


def test_with_tracking_on_opens_are_recorded_and_shown_as_approximate(client, session, login):
    owner = login(client, "owner")
    opens.set_enabled(session, owner, True)
    session.commit()
    alert, deliveries = frozen_alert(session, [BLOG], make_readers(session, 2))
    for delivery in [deliveries[0], deliveries[0], deliveries[1]]:
        client.get(f"/o/{token_of(delivery)}.gif")
    assert client.get("/o/forgedforgedforgedforgedfo.gif").status_code == 200
    assert eventstream.flush().opens == 3
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Open)) == 3
    html = client.get(f"/admin/alerts/{alert.id}/stats").text
    assert "approximate" in figure_row(html) and "≈ 2 readers, 3 opens" in html


def figure_row(html: str) -> str:
    return re.search(r"<tr><th>Opens.*?</tr>", html, re.S).group(0)


def test_the_freeze_step_adds_the_pixel_only_when_tracking_is_on(session, login, client):
    html = "<html><body><p>Hello</p></body></html>"
    url = "http://127.0.0.1/o/TOKEN.gif"
    assert opens.with_open_pixel(session, html, url) == html
    owner = login(client, "owner")
    opens.set_enabled(session, owner, True)
    session.commit()
    with_pixel = opens.with_open_pixel(session, html, url)
    assert with_pixel.endswith(
        f'<img src="{url}" width="1" height="1" alt="" border="0"></body></html>'
    )
