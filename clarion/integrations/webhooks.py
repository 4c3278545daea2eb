"""Outbound webhooks: endpoints owners register, and delivering the outbox to them.

Messages follow the Standard Webhooks specification: headers `webhook-id` (the event's id,
the same on every attempt and resend), `webhook-timestamp` (seconds) and `webhook-signature`
("v1," + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the secret's bytes; during a
rotation one such signature per secret, space-separated). A delivery is tried again with
exponential backoff for 24 hours; an endpoint failing for 24 hours is disabled and the owners
see a notice on the dashboard.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from clarion import audit, editors, fetch, jobqueue, outbox
from clarion.config import get_settings
from clarion.db import session_scope, utcnow
from clarion.errors import FetchRefused, NotFound, ValidationError
from clarion.i18n import admin_gettext
from clarion.models import AdminNotice, Editor, WebhookDelivery, WebhookEndpoint, WebhookEvent

EVENTS = outbox.EVENTS
PERMISSION = "manage_settings"  # owners
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix the specification gives secrets)
GIVE_UP_AFTER = timedelta(hours=24)  # of retrying one event, and of an endpoint failing
FIRST_DELAY = 30.0  # seconds before the first retry; doubled each time
MAX_DELAY = 4 * 3600.0
# A countdown longer than this is left to the sweep: the broker's ETA tasks are held in
# worker memory and redelivered after the visibility timeout, so long ones are not queued.
MAX_COUNTDOWN = 300.0
TIMEOUT = 10.0  # seconds a receiver has to answer
LEASE = timedelta(seconds=TIMEOUT + 50)
SWEEP_GRACE = timedelta(seconds=60)  # what the publish after commit has before the sweep
NOTICE_KIND = "webhook_disabled"


# --- Secrets ----------------------------------------------------------------------------------


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: whsec_ + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"clarion:webhook-secrets:v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(secret: str) -> str:
    return _fernet(get_settings().secret_key).encrypt(secret.encode()).decode()


def _open(sealed: str) -> str:
    return _fernet(get_settings().secret_key).decrypt(sealed.encode()).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets messages to this endpoint are signed with: the current one, and the one
    it replaced while the rotation lasts."""
    now = now or utcnow()
    found = [_open(endpoint.secret)]
    if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > now:
        found.append(_open(endpoint.previous_secret))
    return found


def signature(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one "v1,<base64 HMAC-SHA256>" per secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets_:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


# --- Endpoints --------------------------------------------------------------------------------


def clean_endpoint(url: str, events: list[str]) -> tuple[str, list[str]]:
    """The URL (through the fetch guard) and the events, or ValidationError naming each field."""
    errors: dict[str, str] = {}
    url = (url or "").strip()
    if not url:
        errors["url"] = admin_gettext("Enter the address the events are sent to.")
    elif len(url) > 2000:
        errors["url"] = admin_gettext("The address is too long (at most 2000 characters).")
    else:
        try:
            fetch.check_url(url)
        except FetchRefused as exc:
            errors["url"] = str(exc)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        errors["events"] = admin_gettext("Unknown events: %(names)s.", names=", ".join(unknown))
    elif not events:
        errors["events"] = admin_gettext("Choose at least one event.")
    if errors:
        raise ValidationError(errors)
    return url, [e for e in EVENTS if e in events]


def create_endpoint(
    session: Session,
    actor: Editor,
    url: str,
    events: list[str],
    description: str = "",
    ip: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint (owners); returns it and its secret, shown this once."""
    editors.require(actor, PERMISSION)
    url, events = clean_endpoint(url, events)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url, events=events, description=description.strip()[:200], secret=_seal(secret)
    )
    session.add(endpoint)
    session.flush()
    audit.record(session, actor, "webhook.create", f"webhook:{endpoint.id}", ip, url=url)
    return endpoint, secret


def update_endpoint(
    session: Session,
    actor: Editor,
    endpoint: WebhookEndpoint,
    url: str,
    events: list[str],
    description: str = "",
    enabled: bool = True,
    ip: str | None = None,
) -> WebhookEndpoint:
    """Change an endpoint; enabling it again starts its 24 hours of patience afresh."""
    editors.require(actor, PERMISSION)
    endpoint.url, endpoint.events = clean_endpoint(url, events)
    endpoint.description = description.strip()[:200]
    if enabled and not endpoint.enabled:
        endpoint.disabled_reason, endpoint.failing_since = "", None
    endpoint.enabled = enabled
    session.flush()
    audit.record(session, actor, "webhook.update", f"webhook:{endpoint.id}", ip, url=url)
    return endpoint


def rotate_secret(
    session: Session, actor: Editor, endpoint: WebhookEndpoint, ip: str | None = None
) -> str:
    """A new secret; the old one keeps signing too for 24 hours, so receivers can switch."""
    editors.require(actor, PERMISSION)
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_until = utcnow() + GIVE_UP_AFTER
    endpoint.secret = _seal(secret)
    session.flush()
    audit.record(session, actor, "webhook.rotate", f"webhook:{endpoint.id}", ip)
    return secret


def delete_endpoint(
    session: Session, actor: Editor, endpoint: WebhookEndpoint, ip: str | None = None
) -> None:
    """Forget an endpoint and what was owed to it."""
    editors.require(actor, PERMISSION)
    audit.record(session, actor, "webhook.delete", f"webhook:{endpoint.id}", ip, url=endpoint.url)
    session.delete(endpoint)
    session.flush()


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint with this id, or NotFound."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(admin_gettext("There is no such webhook endpoint."))
    return endpoint


def endpoints(session: Session) -> list[WebhookEndpoint]:
    """Every endpoint, oldest first."""
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


@dataclass(frozen=True)
class LogLine:
    """One delivery as the admin log shows it."""

    delivery: WebhookDelivery
    event: WebhookEvent


def delivery_log(session: Session, endpoint_id: int, limit: int = 100) -> list[LogLine]:
    """The latest deliveries to an endpoint, newest first."""
    rows = session.execute(
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [LogLine(d, e) for d, e in rows]


def resend(
    session: Session, actor: Editor, delivery_id: int, ip: str | None = None
) -> WebhookDelivery:
    """Deliver an event again, with the same webhook-id; published once the caller commits."""
    editors.require(actor, PERMISSION)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(admin_gettext("There is no such webhook delivery."))
    delivery.state, delivery.next_attempt_at, delivery.claimed_until = "pending", utcnow(), None
    session.flush()
    audit.record(session, actor, "webhook.resend", f"webhook_delivery:{delivery.id}", ip)
    outbox.publish_after_commit(session, [delivery.id])
    return delivery


# --- Delivering -------------------------------------------------------------------------------


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 30 s, 1 min, 2 min … 4 h."""
    return min(FIRST_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


def _claim(session: Session, delivery_id: int, now: datetime) -> bool:
    # A conditional update: of two workers handed the same delivery, one sends it.
    return (
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.state == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(
                    WebhookDelivery.claimed_until.is_(None),
                    WebhookDelivery.claimed_until < now,
                ),
            )
            .values(claimed_until=now + LEASE)
        ).rowcount
        == 1
    )


@dataclass(frozen=True)
class _Message:
    url: str
    headers: dict[str, str]
    body: bytes


def _message(session: Session, delivery: WebhookDelivery, now: datetime) -> _Message | None:
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    event = session.get(WebhookEvent, delivery.event_id)
    if endpoint is None or event is None or not endpoint.enabled:
        return None
    body = json.dumps(
        {
            "type": event.type,
            "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
            "data": event.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    # The timestamp is the moment of this attempt, from the clock (`now` may be a test's).
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event.uid,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(signing_secrets(endpoint, now), event.uid, stamp, body),
    }
    return _Message(endpoint.url, headers, body)


def deliver(delivery_id: int, now: datetime | None = None) -> str:
    """Make one attempt at a delivery if it is due and no one else is making it; returns the
    delivery's state afterwards ("pending", "delivered", "failed") or "skipped"."""
    now = now or utcnow()
    with session_scope() as session:
        if not _claim(session, delivery_id, now):
            return "skipped"
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        message = _message(session, delivery, now)
        if message is None:  # the endpoint was disabled or deleted meanwhile
            delivery.state, delivery.claimed_until = "failed", None
            delivery.last_error = "The endpoint is disabled."
            return delivery.state
    status, error, took = _post(message)
    with session_scope() as session:
        state, delay = _settle(session, delivery_id, now, status, error, took)
    if delay is not None and delay <= MAX_COUNTDOWN:
        # Sooner than the sweep, which would find it too (so a broker away loses nothing).
        with contextlib.suppress(jobqueue.QueueUnavailable):
            jobqueue.enqueue(outbox.DELIVER_TASK, delivery_id, countdown=delay)
    return state


def _post(message: _Message) -> tuple[int | None, str, int]:
    policy = fetch.FetchPolicy.from_settings()
    policy = fetch.FetchPolicy(policy.allow_networks, 64 * 1024, min(policy.timeout, TIMEOUT))
    started = time.monotonic()
    try:
        status = fetch.post(message.url, message.body, message.headers, policy)
    except FetchRefused as exc:
        return None, str(exc)[:500], int((time.monotonic() - started) * 1000)
    took = int((time.monotonic() - started) * 1000)
    return status, "" if 200 <= status < 300 else f"answered {status}", took


def _settle(
    session: Session, delivery_id: int, now: datetime, status: int | None, error: str, took: int
) -> tuple[str, float | None]:
    """Record an attempt; the state, and the seconds until the next attempt if there is one."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return "skipped", None  # the endpoint was deleted while we were sending
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    event = session.get(WebhookEvent, delivery.event_id)
    assert endpoint is not None and event is not None
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status = now, status
    delivery.last_error, delivery.last_duration_ms = error, took
    delivery.claimed_until = None
    if not error:
        delivery.state, delivery.delivered_at = "delivered", now
        endpoint.failing_since = None
        return delivery.state, None
    endpoint.failing_since = endpoint.failing_since or now
    if now - endpoint.failing_since >= GIVE_UP_AFTER and endpoint.enabled:
        _disable(session, endpoint, now, error)
    if now - event.created_at >= GIVE_UP_AFTER or not endpoint.enabled:
        delivery.state = "failed"
        return delivery.state, None
    delay = backoff(delivery.attempts)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delivery.state, delay


def _disable(session: Session, endpoint: WebhookEndpoint, now: datetime, error: str) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = f"Failing since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC: {error}"
    session.add(
        AdminNotice(
            kind=NOTICE_KIND,
            title=f"Webhook endpoint {endpoint.url} was disabled",
            detail=(
                f"It has failed for 24 hours ({error}). Check the receiver, then enable it "
                "again under Settings → Webhooks; events meanwhile are in its delivery log."
            )[:2000],
            first_at=now,
            last_at=now,
        )
    )
    audit.record(session, None, "webhook.disable", f"webhook:{endpoint.id}", error=error)


def sweep(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Publish deliveries that are due and not being made: retries fallen due, publishing
    lost after a commit, claims of a killed worker lapsed. Returns their ids."""
    now = now or utcnow()
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.state == "pending",
                    WebhookDelivery.next_attempt_at <= now - SWEEP_GRACE,
                    or_(
                        WebhookDelivery.claimed_until.is_(None),
                        WebhookDelivery.claimed_until < now,
                    ),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )
    for delivery_id in ids:
        jobqueue.enqueue(outbox.DELIVER_TASK, delivery_id)
    return ids
