"""/api/v1/webhooks: owners register endpoints for events, rotate their secrets, read the
delivery log and resend (the same domain functions as Settings → Webhooks)."""

from __future__ import annotations

from typing import Any

from clarion.integrations import webhooks
from clarion.models import WebhookEndpoint, WebhookEvent
from webapp.api.v1 import schemas as s
from webapp.api.v1.core import Reply, dump, ip, operation, token_use
from webapp.extensions import db

TAG = "webhooks"
OWNERS = "manage_settings"


def _out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    keys = ("id", "url", "description", "events", "enabled", "disabled_reason")
    body = {k: getattr(endpoint, k) for k in keys}
    return {**body, "failing_since": endpoint.failing_since, "created_at": endpoint.created_at}


@operation(
    "/webhooks",
    "GET",
    scope="read",
    permission=OWNERS,
    tag=TAG,
    response=s.WebhooksOut,
    summary="Every webhook endpoint and its state (owners)",
)
def webhooks_index() -> Reply:
    """All endpoints, oldest first; secrets are never shown again."""
    items = [_out(e) for e in webhooks.endpoints(db())]
    return Reply(dump(s.WebhooksOut, {"items": items}))


@operation(
    "/webhooks",
    "POST",
    scope="write",
    permission=OWNERS,
    tag=TAG,
    body=s.WebhookIn,
    response=s.WebhookCreated,
    status=201,
    idempotent=True,
    summary="Register an endpoint for events; the answer holds its secret, this once (owners)",
)
def webhook_create(body: dict) -> Reply:
    """The URL goes through the same guard as feeds: public addresses only."""
    endpoint, secret = webhooks.create_endpoint(
        db(), token_use().editor, body["url"], body["events"], body["description"], ip()
    )
    return Reply(dump(s.WebhookCreated, {**_out(endpoint), "secret": secret}), 201)


@operation(
    "/webhooks/<int:endpoint_id>",
    "GET",
    scope="read",
    permission=OWNERS,
    tag=TAG,
    response=s.WebhookOut,
    summary="One webhook endpoint (owners)",
)
def webhook_get(endpoint_id: int) -> Reply:
    """An endpoint's settings and state."""
    return Reply(dump(s.WebhookOut, _out(webhooks.get_endpoint(db(), endpoint_id))))


@operation(
    "/webhooks/<int:endpoint_id>",
    "PATCH",
    scope="write",
    permission=OWNERS,
    tag=TAG,
    body=s.WebhookUpdate,
    response=s.WebhookOut,
    summary="Change an endpoint, or enable it again (fields left out stay) (owners)",
)
def webhook_update(endpoint_id: int, body: dict) -> Reply:
    """Address, events, description, enabled."""
    endpoint = webhooks.get_endpoint(db(), endpoint_id)
    webhooks.update_endpoint(
        db(),
        token_use().editor,
        endpoint,
        body.get("url", endpoint.url),
        body.get("events", endpoint.events),
        body.get("description", endpoint.description),
        body.get("enabled", endpoint.enabled),
        ip(),
    )
    return Reply(dump(s.WebhookOut, _out(endpoint)))


@operation(
    "/webhooks/<int:endpoint_id>",
    "DELETE",
    scope="write",
    permission=OWNERS,
    tag=TAG,
    response=s.Deleted,
    summary="Forget an endpoint and its delivery log (owners)",
)
def webhook_delete(endpoint_id: int) -> Reply:
    """Delete an endpoint."""
    endpoint = webhooks.get_endpoint(db(), endpoint_id)
    webhooks.delete_endpoint(db(), token_use().editor, endpoint, ip())
    return Reply({"deleted": True})


@operation(
    "/webhooks/<int:endpoint_id>/rotate",
    "POST",
    scope="write",
    permission=OWNERS,
    tag=TAG,
    response=s.WebhookSecret,
    summary="A new secret; messages are signed with both for 24 hours (owners)",
)
def webhook_rotate(endpoint_id: int) -> Reply:
    """Rotate the signing secret."""
    endpoint = webhooks.get_endpoint(db(), endpoint_id)
    return Reply({"secret": webhooks.rotate_secret(db(), token_use().editor, endpoint, ip())})


@operation(
    "/webhooks/<int:endpoint_id>/deliveries",
    "GET",
    scope="read",
    permission=OWNERS,
    tag=TAG,
    response=s.WebhookDeliveriesOut,
    summary="The latest 100 deliveries to an endpoint, newest first (owners)",
)
def webhook_deliveries(endpoint_id: int) -> Reply:
    """The delivery log: state, attempts, last answer and how long it took."""
    webhooks.get_endpoint(db(), endpoint_id)
    items = [_delivery(line) for line in webhooks.delivery_log(db(), endpoint_id)]
    return Reply(dump(s.WebhookDeliveriesOut, {"items": items}))


@operation(
    "/webhooks/deliveries/<int:delivery_id>/resend",
    "POST",
    scope="write",
    permission=OWNERS,
    tag=TAG,
    response=s.WebhookDeliveryOut,
    summary="Deliver an event again, with the same webhook-id (owners)",
)
def webhook_resend(delivery_id: int) -> Reply:
    """Queue the delivery again; it is published once this request commits."""
    delivery = webhooks.resend(db(), token_use().editor, delivery_id, ip())
    line = webhooks.LogLine(delivery, db().get(WebhookEvent, delivery.event_id))
    return Reply(dump(s.WebhookDeliveryOut, _delivery(line)))


def _delivery(line: webhooks.LogLine) -> dict[str, Any]:
    d = line.delivery
    keys = ("id", "state", "attempts", "last_status", "last_error", "last_duration_ms")
    return {
        **{k: getattr(d, k) for k in keys},
        "webhook_id": line.event.uid,
        "type": line.event.type,
        "last_attempt_at": d.last_attempt_at,
        "delivered_at": d.delivered_at,
        "created_at": d.created_at,
    }
