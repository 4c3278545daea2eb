"""Receiving a provider webhook: prove it genuine, then store its body for processing.

Nothing is stored, and no replay token is spent, unless the request is proven genuine; the
caller commits and then queues the stored message (`inbound.enqueue`). A body received twice
(providers retry) is stored once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from clarion.bounces import inbound
from clarion.bounces.webhooks import signatures, sns
from clarion.bounces.webhooks.events import PROVIDERS
from clarion.config.bounces import BounceSettings
from clarion.errors import WebhookRefused
from clarion.redisconn import get_redis


@dataclass(frozen=True)
class Received:
    """What became of a genuine webhook: a stored message to process, or why there is none."""

    inbound_id: int | None
    message: str


def receive(
    session: Session,
    provider: str,
    body: bytes,
    headers: Mapping[str, str],
    settings: BounceSettings,
    fetch: sns.Fetcher,
    now: float | None = None,
) -> Received:
    """Verify a webhook from `provider` and store it; WebhookRefused says why not."""
    if provider not in PROVIDERS:
        raise WebhookRefused("No such webhook.", 404)
    now = time.time() if now is None else now
    if provider == "ses":
        return _ses(session, body, settings, fetch)
    if provider == "mailgun":
        if settings.mailgun_signing_key is None:
            raise WebhookRefused("Mailgun webhooks are not configured here.", 404)
        payload = _json(body)
        signatures.verify_mailgun(
            payload, settings.mailgun_signing_key, now, settings.webhook_max_age, first_use
        )
    elif provider == "sendgrid":
        if settings.sendgrid_public_key is None:
            raise WebhookRefused("SendGrid webhooks are not configured here.", 404)
        signatures.verify_sendgrid(
            body,
            headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
            headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
            settings.sendgrid_public_key,
            now,
            settings.webhook_max_age,
        )
        _json(body)
    else:
        if settings.postmark_auth is None:
            raise WebhookRefused("Postmark webhooks are not configured here.", 404)
        signatures.verify_basic_auth(headers.get("Authorization", ""), settings.postmark_auth)
        _json(body)
    return _store(session, provider, body)


def _ses(session: Session, body: bytes, settings: BounceSettings, fetch: sns.Fetcher) -> Received:
    if not settings.ses_topic_arns:
        raise WebhookRefused("Amazon SES webhooks are not configured here.", 404)
    message = _json(body)
    sns.verify(message, settings.ses_topic_arns, fetch)
    if message["Type"] == "SubscriptionConfirmation":
        sns.confirm_subscription(message, fetch)
        return Received(None, "subscription confirmed")
    if message["Type"] == "UnsubscribeConfirmation":
        return Received(None, "unsubscription noted")
    return _store(session, "ses", body)


def _json(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting exhausts the stack
        raise WebhookRefused("The body is not JSON.", 400) from None
    if not isinstance(data, dict | list):
        raise WebhookRefused("The body is not a JSON object or list.", 400)
    return data


def _store(session: Session, provider: str, body: bytes) -> Received:
    stored = inbound.store(session, provider, body, source_ref=inbound.body_ref(provider, body))
    if stored is None:
        return Received(None, "already received")
    return Received(stored.id, "stored")


def first_use(key: str, ttl: int) -> bool:
    """Claim a one-time value (a webhook token) in Redis; False when it was claimed before."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return bool(get_redis().set(f"clarion:webhook-once:{digest}", 1, nx=True, ex=ttl))
