"""Provider webhooks under /webhooks/<provider>: verified and stored by clarion.bounces.webhooks,
processed by a worker after the commit. A request that is not proven genuine gets a 4xx and
leaves nothing behind."""

from __future__ import annotations

from flask import current_app, jsonify, request

from clarion.bounces import inbound
from clarion.bounces.webhooks.receive import receive
from clarion.errors import WebhookRefused
from clarion.fetch import fetch
from webapp.api import bp
from webapp.extensions import db

# Providers send at most a few megabytes (SendGrid batches); more is not a webhook.
MAX_BODY = 8 * 1024 * 1024


def sns_fetch(url: str) -> bytes:
    """GET a URL for the SNS verifier (signing certificate, SubscribeURL)."""
    return fetch(url).body


@bp.post("/webhooks/<provider>")
def webhook(provider: str):
    """Receive one provider webhook."""
    if (request.content_length or 0) > MAX_BODY:
        raise WebhookRefused("The body is too large.", 413)
    settings = current_app.config["CLARION"]
    fetcher = current_app.config.get("SNS_FETCH", sns_fetch)
    received = receive(
        db(), provider, request.get_data(), request.headers, settings.bounces, fetcher
    )
    db().commit()
    if received.inbound_id is not None:
        inbound.enqueue(received.inbound_id)
    return jsonify({"ok": True, "message": received.message})
