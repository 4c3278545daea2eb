"""Webhooks under Settings: an owner registers an endpoint (the secret shown once), reads the
delivery log and resends; a disabled endpoint shows on the dashboard."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from clarion import outbox
from clarion.db import utcnow
from clarion.integrations import webhooks
from clarion.models import WebhookDelivery, WebhookEndpoint
from tests.helpers import csrf_from, refresh
from tests.integration.integrations.conftest import bearer
from tests.integration.integrations.test_webhooks import confirmed_reader
from tests.webhookreceiver import Receiver, running


def add(client, url: str, events: list[str]):
    page = client.get("/admin/settings/webhooks")
    data = {"csrf_token": csrf_from(page.text), "url": url, "events": events}
    return client.post("/admin/settings/webhooks", data=data)


def test_an_owner_adds_a_webhook_and_sees_its_secret_once(client, session, login, loopback):
    login(client, "owner")
    with running(Receiver()) as receiver:
        made = add(client, receiver.url, ["subscriber.confirmed", "petition.signed"])
    assert made.status_code == 201
    secret = made.text.split('id="webhook-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    endpoint = session.scalar(select(WebhookEndpoint))
    assert endpoint.events == ["subscriber.confirmed", "petition.signed"]
    assert secret not in endpoint.secret  # sealed
    detail = client.get(f"/admin/settings/webhooks/{endpoint.id}")
    assert secret not in detail.text and receiver.url in detail.text


def test_a_refused_address_is_explained_and_kept(client, login):
    login(client, "owner")
    refused = add(client, "http://127.0.0.1:9/private", ["alert.started"])
    assert refused.status_code == 422
    assert "CLARION_ALLOW_PRIVATE_FETCH" in refused.text
    assert 'value="http://127.0.0.1:9/private"' in refused.text
    assert 'value="alert.started" checked' in refused.text


def test_the_log_shows_each_attempt_and_resend_sends_the_same_id(
    client, session, login, loopback, published, lists
):
    login(client, "owner")
    with running(Receiver(script=[500])) as receiver:
        made = add(client, receiver.url, ["subscriber.confirmed"])
        receiver.secrets.append(made.text.split('id="webhook-secret">')[1].split("<")[0])
        confirmed_reader(session, lists)
        delivery_id = session.scalar(select(WebhookDelivery.id))
        webhooks.deliver(delivery_id)
        endpoint_id = session.scalar(select(WebhookEndpoint.id))
        log = client.get(f"/admin/settings/webhooks/{endpoint_id}")
        assert "500" in log.text and "subscriber.confirmed" in log.text
        published.clear()
        resent = client.post(
            f"/admin/settings/webhooks/deliveries/{delivery_id}/resend",
            data={"csrf_token": csrf_from(log.text)},
        )
        assert resent.status_code == 302
        assert published == [(outbox.DELIVER_TASK, (delivery_id,), None)]
        assert webhooks.deliver(delivery_id) == "delivered"
    first, second = receiver.received
    assert first.id == second.id and second.verified_by == receiver.secrets


def test_a_disabled_endpoint_is_noticed_on_the_dashboard(
    client, session, login, loopback, published, lists
):
    login(client, "owner")
    with running(Receiver(script=[500, 500])) as receiver:
        add(client, receiver.url, ["subscriber.confirmed"])
        confirmed_reader(session, lists)
        delivery_id = session.scalar(select(WebhookDelivery.id))
        now = utcnow()
        webhooks.deliver(delivery_id, now=now)
        webhooks.deliver(delivery_id, now=now + timedelta(hours=25))
    refresh(session)
    dashboard = client.get("/admin/")
    assert f"Webhook endpoint {receiver.url} was disabled" in dashboard.text
    assert "/admin/settings/webhooks" in dashboard.text


def test_owners_manage_webhooks_through_the_api(
    client, session, make_token, loopback, published, lists
):
    owner = make_token("owner", ("read", "write"))
    with running(Receiver()) as receiver:
        made = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["subscriber.confirmed"]},
            headers=bearer(owner),
        )
        assert made.status_code == 201, made.text
        body = made.json
        assert body["secret"].startswith("whsec_") and body["enabled"] is True
        listed = client.get("/api/v1/webhooks", headers=bearer(owner)).json["items"]
        assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
        rotated = client.post(f"/api/v1/webhooks/{body['id']}/rotate", headers=bearer(owner))
        assert rotated.json["secret"] != body["secret"]
        receiver.secrets += [body["secret"], rotated.json["secret"]]
        changed = client.patch(
            f"/api/v1/webhooks/{body['id']}",
            json={"events": ["subscriber.confirmed", "alert.started"]},
            headers=bearer(owner),
        )
        assert changed.json["events"] == ["subscriber.confirmed", "alert.started"]
        confirmed_reader(session, lists)
        [line] = client.get(
            f"/api/v1/webhooks/{body['id']}/deliveries", headers=bearer(owner)
        ).json["items"]
        assert line["state"] == "pending" and line["type"] == "subscriber.confirmed"
        assert webhooks.deliver(line["id"]) == "delivered"
    assert receiver.received[0].id == line["webhook_id"]
    assert receiver.received[0].verified_by == receiver.secrets


def test_the_api_refuses_editors_and_private_addresses(client, make_token):
    editor = make_token("editor", ("read", "write"), email="ed@example.org")
    assert client.get("/api/v1/webhooks", headers=bearer(editor)).status_code == 403
    owner = make_token("owner", ("read", "write"))
    refused = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/", "events": ["nope"]},
        headers=bearer(owner),
    )
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert "events" in refused.text
    refused = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/", "events": ["alert.started"]},
        headers=bearer(owner),
    )
    assert refused.status_code == 422 and "CLARION_ALLOW_PRIVATE_FETCH" in refused.text
