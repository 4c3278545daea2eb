"""Every admin page renders for an owner, alerts show their state clearly, nothing is remote."""

from __future__ import annotations

import re

from clarion.alerts.campaigns import STATE_HELP
from clarion.db import utcnow
from clarion.models import Alert, AlertStatus, Delivery, DeliveryStatus, Job

INLINE = re.compile(r"<script(?![^>]*\ssrc=)|<[a-z][^<>]*\s(?:style|on[a-z]+)=", re.I)
REMOTE = re.compile(
    r"""\s(?:src|srcset|poster)=["']?(?:https?:)?//|<link[^>]+href=["']?(?:https?:)?//"""
)


def test_every_page_renders_and_loads_nothing_from_elsewhere(
    client, session, login, subscribed, lists
):
    login(client, "owner")
    alerts = {}
    for status in AlertStatus:
        alert = Alert(
            kind="newsletter",
            name=f"Alert {status.value}",
            subject="S",
            fields={"body_md": "x"},
            audience={"lists": [lists["alerts"].id]},
            status=status,
            scheduled_at=utcnow() if status == AlertStatus.SCHEDULED else None,
        )
        session.add(alert)
        alerts[status] = alert
    session.flush()
    session.add(
        Delivery(
            alert_id=alerts[AlertStatus.SENT].id,
            subscriber_id=subscribed.id,
            status=DeliveryStatus.SENT,
            sent_at=utcnow(),
        )
    )
    session.add(Job(kind="import", status="done", options={"file_name": "x.csv"}))
    session.commit()
    pages = [
        "/admin/",
        "/admin/alerts",
        f"/admin/subscribers/{subscribed.id}",
        "/admin/subscribers?q=reader",
        "/admin/lists",
        f"/admin/lists/{lists['alerts'].id}",
        "/admin/tags",
        "/admin/jobs",
        "/admin/audit",
        "/admin/editors",
        "/admin/account",
        "/admin/outbox",
        "/admin/settings/bounces",
        "/archive",
    ]
    pages += [
        f"/admin/alerts/{a.id}{suffix}" for a in alerts.values() for suffix in ("", "/preview")
    ]
    for path in pages:
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["Content-Security-Policy"], path
        assert not REMOTE.search(html), path  # links may point out; nothing loads from out
        # The CSP would block inline script and style anyway; the pages do not rely on them.
        assert not INLINE.search(html), path
    detail = client.get(f"/admin/subscribers/{subscribed.id}").get_data(as_text=True)
    assert "Alert sent" in detail
    for status, alert in alerts.items():
        page = client.get(f"/admin/alerts/{alert.id}").get_data(as_text=True)
        assert f'<span class="badge badge-{status.value}">{status.value}</span>' in page
        assert STATE_HELP[status] in page
