"""Outbound webhooks: endpoints owners register, and delivering the outbox to them.

Messages follow the Standard Webhooks specification: headers `webhook-id` (the event's id,
the same on every attempt and resend), `webhook-timestamp` (seconds) and `webhook-signature`
("v1," + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the secret's bytes; during a
rotation one such signature per secret, space-separated). A delivery is tried again with
exponential backoff for 24 hours; an endpoint failing for 24 hours is disabled and the owners
see a notice on the dashboard. The outbox is delivered a batch per endpoint over one kept-alive
connection (`deliver_endpoint`), paced while a send is running (CLARION_WEBHOOK_RATE_DURING_SEND
deliveries a second); `deliver` makes one attempt at one delivery (resends).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from clarion import audit, editors, fetch, jobqueue, outbox, throttle
from clarion.config import get_settings
from clarion.db import session_scope, utcnow
from clarion.delivery import rates
from clarion.errors import FetchRefused, NotFound, ValidationError
from clarion.i18n import admin_gettext
from clarion.models import AdminNotice, Editor, WebhookDelivery, WebhookEndpoint, WebhookEvent
from clarion.redisconn import get_redis

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
    return _sign(endpoint.url, signing_secrets(endpoint, now), event)


def _sign(url: str, secrets_: list[str], event: WebhookEvent | _EventData) -> _Message:
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
        "webhook-signature": signature(secrets_, event.uid, stamp, body),
    }
    return _Message(url, headers, body)


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


def _policy() -> fetch.FetchPolicy:
    policy = fetch.FetchPolicy.from_settings()
    return fetch.FetchPolicy(policy.allow_networks, 64 * 1024, min(policy.timeout, TIMEOUT))


def _post(message: _Message) -> tuple[int | None, str, int]:
    started = time.monotonic()
    try:
        status = fetch.post(message.url, message.body, message.headers, _policy())
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
    return _record_attempt(session, delivery, endpoint, event.created_at, now, status, error, took)


def _record_attempt(
    session: Session,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    event_created_at: datetime,
    now: datetime,
    status: int | None,
    error: str,
    took: int,
) -> tuple[str, float | None]:
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
    if now - event_created_at >= GIVE_UP_AFTER or not endpoint.enabled:
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


# --- Delivering in batches -----------------------------------------------------------------
# The outbox wakes one task per endpoint, however many events it owes: the task claims the
# endpoint's due deliveries a batch at a time, POSTs them one after another over one kept-alive
# connection and records the batch in one transaction. A delivery is what it was one at a time:
# its own message, id, timestamp and signature; the same backoff, disabling and notice.

BATCH_SIZE = 100
# The POSTs of a batch start within this long after its claim: the last one (TIMEOUT, twice
# if a kept-alive connection must be made again) ends and is recorded well within the LEASE.
BATCH_SECONDS = 25.0
# A task's run, after which no POST starts: it hands what is left to a fresh task, whose turn
# in the queue comes after the tasks queued meanwhile (other endpoints', confirmation mails on
# `default` in a worker that takes from both): one run holds a worker process ~10 s at most.
RUN_SECONDS = 10.0
RETRY_KEY = "clarion:webhooks:retry:{}"  # set while a wake-up for a retry is queued
# While a send is running, deliveries take CPU from it (on 2 cores, all 10,000 of a backlog
# made during a 25 s send slow it by 25-30 %): all endpoints together then make at most
# CLARION_WEBHOOK_RATE_DURING_SEND a second (a moving window of one second in Redis, kept by
# `limits`). A task that finds the second's share used ends and queues its endpoint's next
# task for when the window has room, so its worker process is the send's in the meantime. A
# rate, not a pause: a send of days delays webhooks, it does not stop them.
PACE_ID = "webhooks-during-send"


@dataclass(frozen=True)
class _EventData:
    """What a message is made of: an event's columns."""

    uid: str
    type: str
    created_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Batch:
    url: str
    secrets: list[str]
    events: list[tuple[int, _EventData]]  # (delivery id, its event), oldest first


@dataclass(frozen=True)
class _Attempt:
    delivery_id: int
    status: int | None
    error: str
    took: int


def deliver_endpoint(
    endpoint_id: int,
    now: datetime | None = None,
    size: int = BATCH_SIZE,
    budget: float = RUN_SECONDS,
) -> dict[str, int]:
    """Make the endpoint's due deliveries, oldest first, in batches of `size`, for about
    `budget` seconds; then queue a task for what is left. The states of the attempts made."""
    outbox.woken(endpoint_id)  # first: an event committed from now on queues another task
    counts = dict.fromkeys(("delivered", "pending", "failed"), 0)
    stop_at = time.monotonic() + budget
    wait = 0.0  # when paced: seconds until the pace allows the next delivery
    while True:
        at = now or utcnow()
        pace = _pace()
        take, wait = _allowance(pace, size)
        if not take:
            break
        batch = _claim_batch(endpoint_id, at, take)
        if batch is None:
            break
        if pace is not None and not _spend(pace, batch):
            wait = max(_allowance(pace, size)[1], 0.05)  # another worker took the share
            break
        attempts = _post_batch(batch, min(stop_at, time.monotonic() + BATCH_SECONDS))
        for state in _settle_batch(endpoint_id, batch, attempts, at):
            counts[state] = counts.get(state, 0) + 1
        unreachable = bool(attempts) and attempts[-1].status is None
        if len(batch.events) < take or unreachable or time.monotonic() >= stop_at:
            break
    _wake_later(endpoint_id, now or utcnow(), wait)
    return counts


def _pace() -> str | None:
    """The limit deliveries keep to now (limits' notation), or None: full speed."""
    rate = get_settings().webhook_rate_during_send
    if rate <= 0 or not rates.sending_now():
        return None
    return f"{rate}/second"


def _allowance(pace: str | None, size: int) -> tuple[int, float]:
    """How many deliveries to claim now, and when none: the seconds until the pace allows one."""
    if pace is None:
        return size, 0.0
    try:
        left, wait = throttle.left(pace, PACE_ID)
    except redis.RedisError:
        return size, 0.0  # without Redis no send makes progress either
    return min(size, left), wait


def _spend(pace: str, batch: _Batch) -> bool:
    """Count the batch against the pace; when another worker took the share meanwhile, give
    the claims back (False)."""
    try:
        if throttle.hit(pace, PACE_ID, cost=len(batch.events)):
            return True
    except redis.RedisError:
        return True
    ids = [delivery_id for delivery_id, _ in batch.events]
    with session_scope() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    return False


def _claim_batch(endpoint_id: int, now: datetime, size: int) -> _Batch | None:
    """Claim up to `size` due deliveries of the endpoint in one conditional update (of two
    workers, each gets other rows); None when there are none."""
    due = (
        WebhookDelivery.endpoint_id == endpoint_id,
        WebhookDelivery.state == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
    )
    # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway) lets a second worker take the next
    # rows instead of waiting; the conditions repeated outside make the claim safe without it.
    # A CTE, evaluated once: as a subquery in the WHERE, PostgreSQL may run it again for each
    # row, skipping the rows this very statement has locked, and claim far more than `size`.
    oldest = (
        select(WebhookDelivery.id)
        .where(*due)
        .order_by(WebhookDelivery.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("oldest")
    )
    with session_scope() as session:
        claimed = list(
            session.scalars(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(select(oldest.c.id)), *due)
                .values(claimed_until=now + LEASE)
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
        )
        if not claimed:
            return None
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or not endpoint.enabled:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(claimed))
                .values(state="failed", claimed_until=None, last_error="The endpoint is disabled.")
                .execution_options(synchronize_session=False)
            )
            return None
        # Columns, not ORM objects: a hundred of them would cost more than their POSTs.
        events = session.execute(
            select(
                WebhookDelivery.id,
                WebhookEvent.uid,
                WebhookEvent.type,
                WebhookEvent.created_at,
                WebhookEvent.payload,
            )
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id.in_(claimed))
            .order_by(WebhookDelivery.id)
        ).all()
        owed = [
            (row.id, _EventData(row.uid, row.type, row.created_at, row.payload)) for row in events
        ]
        return _Batch(endpoint.url, signing_secrets(endpoint, now), owed)


def _post_batch(batch: _Batch, deadline: float) -> list[_Attempt]:
    """POST each message in order over one connection; stop when the receiver cannot be
    reached (the rest wait with the failed one) or at `deadline` (monotonic; the first is
    always made)."""
    attempts: list[_Attempt] = []
    try:
        poster = fetch.Poster(batch.url, _policy())  # resolved and checked once, pinned
    except FetchRefused as exc:
        return [_Attempt(batch.events[0][0], None, str(exc)[:500], 0)]
    with poster:
        for delivery_id, event in batch.events:
            if attempts and time.monotonic() > deadline:
                break
            message = _sign(batch.url, batch.secrets, event)
            started = time.monotonic()
            try:
                status = poster.post(message.body, message.headers)
            except FetchRefused as exc:
                took = int((time.monotonic() - started) * 1000)
                attempts.append(_Attempt(delivery_id, None, str(exc)[:500], took))
                break
            took = int((time.monotonic() - started) * 1000)
            error = "" if 200 <= status < 300 else f"answered {status}"
            attempts.append(_Attempt(delivery_id, status, error, took))
    return attempts


def _settle_batch(
    endpoint_id: int, batch: _Batch, attempts: list[_Attempt], now: datetime
) -> list[str]:
    """Record the batch's attempts in one transaction; release the claims of those not made
    (after an unreachable receiver, not before its retry). The attempts' states."""
    created = {delivery_id: event.created_at for delivery_id, event in batch.events}
    with session_scope() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None:
            return []  # deleted while we were sending, and its deliveries with it
        failed = {a.delivery_id for a in attempts if a.error}
        rows = {
            row.id: row
            for row in session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.id.in_(failed))
            )
        }
        states, delivered, retry_at = [], [], None
        # In order, as one at a time would have: a success clears the endpoint's failing_since,
        # a failure after it starts it again (and one before it may disable the endpoint).
        for attempt in attempts:
            if not attempt.error:
                endpoint.failing_since = None
                delivered.append(attempt)
                states.append("delivered")
                continue
            delivery = rows.get(attempt.delivery_id)
            if delivery is None:
                continue
            state, delay = _record_attempt(
                session,
                delivery,
                endpoint,
                created[attempt.delivery_id],
                now,
                attempt.status,
                attempt.error,
                attempt.took,
            )
            states.append(state)
            if delay is not None and attempt.status is None:
                retry_at = delivery.next_attempt_at
        _record_delivered(session, delivered, now)
        left = [delivery_id for delivery_id, _ in batch.events[len(attempts) :]]
        if left:
            release = {"claimed_until": None}
            if retry_at is not None:  # unreachable: they wait for the failed one's retry
                release["next_attempt_at"] = retry_at
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(left))
                .values(**release)
                .execution_options(synchronize_session=False)
            )
    return states


def _record_delivered(session: Session, delivered: list[_Attempt], now: datetime) -> None:
    """The successes of a batch in one statement (what _record_attempt does for each)."""
    if not delivered:
        return
    ids = [a.delivery_id for a in delivered]
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(
            state="delivered",
            delivered_at=now,
            attempts=WebhookDelivery.attempts + 1,
            last_attempt_at=now,
            last_status=case(
                {a.delivery_id: a.status for a in delivered}, value=WebhookDelivery.id
            ),
            last_error="",
            last_duration_ms=case(
                {a.delivery_id: a.took for a in delivered}, value=WebhookDelivery.id
            ),
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )


def _wake_later(endpoint_id: int, now: datetime, wait: float = 0.0) -> None:
    """Queue a task for the endpoint's next due delivery: now if some are due (the budget
    ran out), in `wait` seconds if the pace during a send holds them back, or when a retry
    falls due if that is soon; later ones are left to the sweep."""
    with session_scope() as session:
        next_at = session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.state == "pending",
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            )
        )
    if next_at is None:
        return
    delay = (next_at - now).total_seconds()
    with contextlib.suppress(jobqueue.QueueUnavailable):
        if delay <= 0:
            outbox.wake(endpoint_id, countdown=wait or None)
        elif delay <= MAX_COUNTDOWN and _first_wake_up(endpoint_id, delay):
            jobqueue.enqueue(outbox.BATCH_TASK, endpoint_id, countdown=delay)


def _first_wake_up(endpoint_id: int, delay: float) -> bool:
    # One queued wake-up per endpoint at a time, not one per failed batch.
    try:
        key = RETRY_KEY.format(endpoint_id)
        return bool(get_redis().set(key, 1, nx=True, ex=max(1, math.ceil(delay))))
    except redis.RedisError:
        return True


def sweep(now: datetime | None = None) -> list[int]:
    """Wake the endpoints that have deliveries due and not being made: retries fallen due,
    publishing lost after a commit, claims of a killed worker lapsed. Returns the endpoints."""
    now = now or utcnow()
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.state == "pending",
                    WebhookDelivery.next_attempt_at <= now - SWEEP_GRACE,
                    or_(
                        WebhookDelivery.claimed_until.is_(None),
                        WebhookDelivery.claimed_until < now,
                    ),
                )
                .distinct()
                .order_by(WebhookDelivery.endpoint_id)
            )
        )
    for endpoint_id in ids:
        outbox.wake(endpoint_id)
    return ids
