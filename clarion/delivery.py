"""The delivery engine: dispatch writes the ledger, send_batch sends a range of it, the sweep heals.

The ledger (`deliveries`) is the single truth: one row per (alert, subscriber). A batch claims
its rows (queued → sending) in one UPDATE, loads its readers in one query, checks once more that
each is still subscribed and not suppressed, sends over reused SMTP connections under the shared
rate limit, and records outcomes in bulk every FLUSH_EVERY messages. A crash loses nothing:
claims older than the lease are put back by the sweep; a reader gets two copies only if the
crash falls between the server's 250 and the commit of that row.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from clarion import batches, bounce_classify, jobqueue, sending
from clarion.config import Settings, get_settings
from clarion.db import session_scope, utcnow
from clarion.errors import InvalidTransition
from clarion.messages import AlertFrame, Recipient, Skeleton
from clarion.models import (
    Alert,
    AlertStatus,
    Bounce,
    BounceClass,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from clarion.redisconn import get_redis
from clarion.smtpclient import Outcome, Reply, StreamBroken
from clarion.transport import Connection, NoServer, Transport

log = logging.getLogger(__name__)

FIRST_PAGE = 1000  # small, so that the first batches go out while dispatch carries on
MAX_PAGE = 20000
# Outcomes are recorded, and a pause, cancel or unsubscribe noticed, after this many messages
# or this many seconds, whichever comes first.
FLUSH_EVERY = 250
FLUSH_SECONDS = 1.0
MAX_BROKEN = 3  # broken connections a batch puts up with before it retries later
POLICY_PAUSE_AFTER = 5  # 5.7.x refusals, across all workers, that pause the alert
POLICY_WINDOW = 600
RATE_BUCKET = 5  # seconds per bucket of the recent-rate counters
RATE_SPAN = 6  # buckets averaged
DISPATCH_TASK = "tasks.delivery.dispatch"
OPEN_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)

_table = Delivery.__table__


# --- Dispatch -----------------------------------------------------------------------------


def enqueue_dispatch(alert_id: int) -> None:
    """Ask a worker to dispatch (or carry on dispatching and handing out) an alert's send."""
    _dispatch_heartbeat(alert_id)
    jobqueue.enqueue(DISPATCH_TASK, alert_id)


def _dispatch_heartbeat(alert_id: int) -> None:
    lease = get_settings().send_lease_seconds
    get_redis().set(f"clarion:dispatching:{alert_id}", b"1", ex=lease)


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _write_page(session: Session, alert: Alert, limit: int) -> list[tuple[int, int]]:
    """Insert the next page of recipients, server-side; returns (delivery id, subscriber id)."""
    after = session.scalar(
        select(func.max(Delivery.subscriber_id)).where(Delivery.alert_id == alert.id)
    )
    page = sending.recipients_query(session, alert, after or 0).limit(limit).subquery()
    rows = select(
        literal(alert.id),
        page.c.id,
        literal(DeliveryStatus.QUEUED.value),
        literal(0),
        literal(""),
        literal(utcnow(), _table.c.updated_at.type),
    ).where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
    stmt = (
        _insert(session)(_table)
        .from_select(
            ["alert_id", "subscriber_id", "status", "attempts", "last_reply", "updated_at"], rows
        )
        .on_conflict_do_nothing()
        .returning(_table.c.id, _table.c.subscriber_id)
    )
    return [(r[0], r[1]) for r in session.execute(stmt)]


def dispatch(alert_id: int) -> int:
    """Write the ledger page by page, handing out batches as soon as each page is committed."""
    settings = get_settings()
    page, written = FIRST_PAGE, 0
    while True:
        with session_scope() as session:
            alert = batches.locked_alert(session, alert_id)
            if alert is None or alert.dispatched_at is not None:
                break
            if alert.status not in (AlertStatus.SENDING, AlertStatus.PAUSED):
                break
            _dispatch_heartbeat(alert_id)
            rows = _write_page(session, alert, page)
            if not rows:
                alert.dispatched_at = utcnow()
                break
            ids = sorted(r[0] for r in rows)
            batches.add_batches(session, alert_id, ids, settings.batch_size)
            alert.recipients = (alert.recipients or 0) + len(rows)
        written += len(rows)
        batches.refill(alert_id)
        page = min(page * 4, MAX_PAGE)
    batches.refill(alert_id)
    finish_if_done(alert_id)
    return written


def finish_if_done(alert_id: int) -> bool:
    """Mark the alert SENT once dispatch is complete and no row is left open."""
    with session_scope() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.SENDING or alert.dispatched_at is None:
            return False
        still_open = session.scalar(
            select(Delivery.id)
            .where(Delivery.alert_id == alert_id, Delivery.status.in_(OPEN_STATUSES))
            .limit(1)
        )
        if still_open is not None:
            return False
        try:
            sending.transition(session, alert, "finish", finished_at=utcnow())
        except InvalidTransition:
            return False
        return True


# --- Replies ------------------------------------------------------------------------------


class Verdict:
    """What an SMTP outcome means for the row."""

    SENT = "sent"
    DEFER = "defer"
    FAIL = "fail"
    POLICY = "policy"  # our sending is refused: not the reader's fault; pause


def verdict(outcome: Outcome) -> str:
    """250 sent; 4xx deferred; 5.7.x and refusals of the sender itself policy; else failed."""
    reply = outcome.reply
    if outcome.stage == "end" and 200 <= reply.code < 300:
        return Verdict.SENT
    if 400 <= reply.code < 500:
        return Verdict.DEFER
    if reply.status.startswith("5.7.") or reply.code in (530, 535):
        return Verdict.POLICY
    if outcome.stage in ("mail", "data"):
        return Verdict.POLICY  # refusing our envelope sender or DATA is about us, not the reader
    return Verdict.FAIL


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before retry number `attempts`: exponential, capped, with jitter."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    return delay * random.uniform(0.8, 1.2)  # spreads retries; not a secret


# --- One batch ----------------------------------------------------------------------------


@dataclass
class Claimed:
    """A claimed row with what is needed to send to its reader."""

    delivery_id: int
    attempts: int
    subscriber_id: int
    uid: str
    email: str
    name: str | None
    eligible: bool


def claim(session: Session, alert_id: int, first_id: int, last_id: int, now: datetime) -> list[int]:
    """Take the queued and due-deferred rows of the range: one UPDATE, atomic per row."""
    stmt = (
        update(_table)
        .where(
            _table.c.alert_id == alert_id,
            _table.c.id.between(first_id, last_id),
            or_(
                _table.c.status == DeliveryStatus.QUEUED.value,
                and_(
                    _table.c.status == DeliveryStatus.DEFERRED.value,
                    _table.c.next_attempt_at <= now,
                ),
            ),
        )
        .values(status=DeliveryStatus.SENDING.value, claimed_at=now, updated_at=now)
        .returning(_table.c.id)
    )
    return [row[0] for row in session.execute(stmt)]


def among(session: Session, column: Any, values: list) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`: one parameter, not hundreds.

    psycopg parses a statement with 250 placeholders in about 2 ms, on every batch.
    """
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    item = BigInteger() if isinstance(column.type, Integer | BigInteger) else Text()
    return column == any_(cast(literal(values, ARRAY(item)), ARRAY(item)))


def load_recipients(session: Session, ids: list[int], lists: list[int]) -> list[Claimed]:
    """Readers of the claimed rows in one query, then whether each may still be sent to."""
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.attempts,
            Subscriber.id,
            Subscriber.uid,
            Subscriber.email,
            Subscriber.name,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(among(session, Delivery.id, ids))
        .order_by(Delivery.id)
    )
    claimed = [Claimed(*row, eligible=True) for row in rows]
    mark_eligibility(session, claimed, lists)
    return claimed


def mark_eligibility(session: Session, rows: list[Claimed], lists: list[int]) -> None:
    """Set `eligible`: still subscribed on one of the lists and not suppressed.

    Two single-table lookups by unique index rather than a correlated join: the plan stays
    right even before PostgreSQL has statistics for a freshly imported list (a join planned
    on default estimates took a minute for 250 readers).
    """
    if not rows:
        return
    subscribed = set(
        session.scalars(
            select(Subscription.subscriber_id).where(
                among(session, Subscription.subscriber_id, [r.subscriber_id for r in rows]),
                Subscription.list_id.in_(lists),
                Subscription.status == SubscriptionStatus.SUBSCRIBED,
            )
        )
    )
    suppressed = set(
        session.scalars(
            select(Suppression.email).where(
                among(session, Suppression.email, [r.email for r in rows])
            )
        )
    )
    for row in rows:
        row.eligible = row.subscriber_id in subscribed and row.email not in suppressed


_UPDATE = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=_table.c.attempts + bindparam("b_tried"),
        next_attempt_at=bindparam("b_next", type_=_table.c.next_attempt_at.type),
        claimed_at=None,
        sent_at=bindparam("b_sent", type_=_table.c.sent_at.type),
        last_reply=bindparam("b_reply"),
        message_id=bindparam("b_message_id"),
        server=bindparam("b_server"),
        updated_at=bindparam("b_now", type_=_table.c.updated_at.type),
    )
)


@dataclass
class Result:
    """One row's outcome, waiting for the next flush."""

    row: Claimed
    status: DeliveryStatus
    reply: str
    tried: int = 1
    next_at: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = None
    server: str | None = None
    bounce: tuple[BounceClass, str, str] | None = None  # class, status code, reason


def _params(result: Result, now: datetime) -> dict[str, Any]:
    return {
        "b_id": result.row.delivery_id,
        "b_status": result.status.value,
        "b_tried": result.tried,
        "b_next": result.next_at,
        "b_sent": result.sent_at,
        "b_reply": result.reply[:1000],
        "b_message_id": result.message_id,
        "b_server": result.server,
        "b_now": now,
    }


_UNNEST = text(
    """
    UPDATE deliveries AS d
    SET status = v.status, attempts = d.attempts + v.tried, next_attempt_at = v.next_at,
        claimed_at = NULL, sent_at = v.sent_at, last_reply = v.reply, message_id = v.mid,
        server = v.server, updated_at = :now
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:tried AS int[]),
                CAST(:next_at AS timestamptz[]), CAST(:sent_at AS timestamptz[]),
                CAST(:replies AS text[]), CAST(:mids AS text[]), CAST(:servers AS text[]))
        AS v(id, status, tried, next_at, sent_at, reply, mid, server)
    WHERE d.id = v.id
    """
)


def record_outcomes(session: Session, results: list[Result], now: datetime) -> None:
    """Write a flush's outcomes: one statement on PostgreSQL, executemany on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(_UPDATE, [_params(r, now) for r in results])
        return
    session.execute(
        _UNNEST,
        {
            "now": now,
            "ids": [r.row.delivery_id for r in results],
            "statuses": [r.status.value for r in results],
            "tried": [r.tried for r in results],
            "next_at": [r.next_at for r in results],
            "sent_at": [r.sent_at for r in results],
            "replies": [r.reply[:1000] for r in results],
            "mids": [r.message_id for r in results],
            "servers": [r.server for r in results],
        },
    )


def record_bounce(session: Session, alert_id: int, result: Result) -> None:
    """A 5xx refusal: a Bounce with its code, and for a hard one, a Suppression."""
    assert result.bounce is not None
    klass, status, reason = result.bounce
    row = result.row
    hard = klass == BounceClass.HARD
    bounce = Bounce(
        source="delivery",
        delivery_id=row.delivery_id,
        alert_id=alert_id,
        subscriber_id=row.subscriber_id,
        email=row.email,
        classification=klass,
        status_code=status,
        reason=f"{reason}: {result.reply}"[:2000],
        action="suppressed" if hard else "counted",
        counted=not hard,
    )
    session.add(bounce)
    session.flush()
    if hard:
        session.execute(
            _insert(session)(Suppression.__table__)
            .values(
                email=row.email,
                reason=SuppressionReason.HARD_BOUNCE.value,
                detail=f"{status} {reason}".strip()[:2000],
                bounce_id=bounce.id,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )


_transports: dict[tuple, Transport] = {}


def transport_for(settings: Settings) -> Transport:
    """The process's transport for the configured servers (connections are per batch)."""
    key = (settings.smtp_servers, settings.redis_url)
    if key not in _transports:
        _transports[key] = Transport(
            settings.smtp_servers, get_redis(), lease=settings.send_lease_seconds
        )
    return _transports[key]


_skeletons: dict[tuple[int, str, str], Skeleton] = {}


def skeleton_for(alert: Alert, settings: Settings) -> Skeleton:
    """The alert's message skeleton, built once per process and alert."""
    key = (alert.id, alert.uid, alert.frozen_hash or "")
    skeleton = _skeletons.get(key)
    if skeleton is None:
        if len(_skeletons) >= 8:
            _skeletons.pop(next(iter(_skeletons)))
        frame = AlertFrame(
            alert_id=alert.id,
            alert_uid=alert.uid,
            subject=alert.frozen_subject or "",
            html=alert.frozen_html or "",
            text=alert.frozen_text or "",
            meta=alert.frozen_meta,
        )
        skeleton = _skeletons[key] = Skeleton(frame, settings)
    return skeleton


class Job:
    """One row on its way: the envelope now, the message bytes when the stream asks."""

    __slots__ = ("envelope_from", "message_id", "rcpt", "row", "skeleton", "smtputf8", "token")

    def __init__(self, row: Claimed, skeleton: Skeleton) -> None:
        self.row = row
        self.skeleton = skeleton
        self.token, self.envelope_from, self.rcpt, self.smtputf8 = skeleton.envelope(
            row.delivery_id, row.email
        )
        self.message_id = ""

    def data(self) -> bytes:
        row = self.row
        recipient = Recipient(row.delivery_id, row.uid, row.email, row.name)
        message = self.skeleton.build(recipient, self.token)
        self.message_id = message.message_id
        return message.data


@dataclass
class BatchRun:
    """Sending the claimed rows of one batch, recording outcomes as it goes."""

    alert: Alert
    rows: list[Claimed]
    settings: Settings
    transport: Transport
    pending: list[Result] = field(default_factory=list)
    handled: set[int] = field(default_factory=set)
    halted: AlertStatus | None = None
    conn: Connection | None = None
    retry_in: float | None = None
    stopped: bool = False
    broken: int = 0

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.flushed = time.monotonic()
        self.lists = self.alert.frozen_meta["audience"]["lists"]
        self.budget = self.settings.send_lease_seconds / 2
        self.skeleton = skeleton_for(self.alert, self.settings)
        self.sent = 0

    def run(self) -> None:
        """Send every eligible row; whatever is not handled goes back to the queue."""
        queue = deque(self.rows)
        try:
            while queue and self.halted is None and not self.stopped:
                self._stream(queue)
        except NoServer as exc:
            self.retry_in = exc.retry_in
        finally:
            if self.conn is not None:
                self.conn.close()
            self.flush()
            self._release_unhandled()

    def _stream(self, queue: deque[Claimed]) -> None:
        """Stream rows over one connection until done, stopped, or the connection breaks."""
        if self.conn is None:
            self.conn = self.transport.open()
        conn = self.conn
        try:
            for job, outcome in conn.client.stream(self._jobs(queue, conn)):
                if not self._judge(job.row, outcome, job.message_id, conn.server.name):
                    self.stopped = True
                    break
        except StreamBroken as exc:
            self.transport.breaker.failure(conn.server)
            for job in exc.in_doubt:
                self._defer(job.row, f"connection error: {exc}", conn.server.name)
            queue.extendleft(job.row for job in reversed(exc.unsent))
            conn.close()
            self.conn = None
            self.broken += 1
            if self.broken >= MAX_BROKEN:
                # Servers that accept and then drop us: leave the rest for a later attempt.
                self.retry_in = self.settings.retry_base_seconds
                self.stopped = True
            return
        if not conn.client.connected:
            conn.close()
            self.conn = None

    def _jobs(self, queue: deque[Claimed], conn: Connection) -> Iterator[Job]:
        """The next rows to send, checking in (flush, pause, time budget) along the way."""
        while queue:
            if not self._checkpoint():
                self.stopped = True
                return
            row = queue.popleft()
            if not row.eligible:
                self._skip(row)
                continue
            conn.acquire()
            yield Job(row, self.skeleton)

    def _checkpoint(self) -> bool:
        """Flush when due; False when the batch must stop (paused, cancelled, out of time)."""
        if self.halted is not None:
            return False
        due = len(self.pending) >= FLUSH_EVERY or time.monotonic() - self.flushed > FLUSH_SECONDS
        if due:
            self.flush()
        return self.halted is None and time.monotonic() - self.started < self.budget

    def _skip(self, row: Claimed) -> None:
        reply = "not sent: unsubscribed or suppressed before sending"
        self._result(Result(row, DeliveryStatus.SKIPPED, reply, tried=0))

    def _result(self, result: Result) -> None:
        self.pending.append(result)
        self.handled.add(result.row.delivery_id)

    def _judge(self, row: Claimed, outcome: Outcome, message_id: str, server: str) -> bool:
        kind = verdict(outcome)
        reply = str(outcome.reply)
        if kind == Verdict.SENT:
            self.sent += 1
            self._result(
                Result(
                    row,
                    DeliveryStatus.SENT,
                    reply,
                    sent_at=utcnow(),
                    message_id=message_id,
                    server=server,
                )
            )
        elif kind == Verdict.DEFER:
            self._defer(row, reply, server)
        elif kind == Verdict.FAIL:
            self._fail(row, outcome.reply, server)
        else:
            self._defer(row, reply, server)
            return self._policy_refusal(outcome, server)
        return True

    def _defer(self, row: Claimed, reply: str, server: str | None) -> None:
        now = utcnow()
        started = self.alert.started_at or now
        if now - started > timedelta(hours=self.settings.retry_expire_hours):
            given_up = f"gave up after {row.attempts + 1} attempts: {reply}"
            self._result(Result(row, DeliveryStatus.FAILED, given_up, server=server))
            return
        delay = backoff(row.attempts + 1, self.settings)
        next_at = now + timedelta(seconds=delay)
        self._result(Result(row, DeliveryStatus.DEFERRED, reply, next_at=next_at, server=server))

    def _fail(self, row: Claimed, reply: Reply, server: str) -> None:
        klass, reason = bounce_classify.classify_status(reply.status, reply.text, str(reply.code))
        if klass not in (BounceClass.HARD, BounceClass.SOFT, BounceClass.SENDER_FAULT):
            klass = BounceClass.SOFT
        status = reply.status or str(reply.code)
        result = Result(row, DeliveryStatus.FAILED, str(reply), server=server)
        result.bounce = (klass, status, reason)
        self._result(result)

    def _policy_refusal(self, outcome: Outcome, server: str) -> bool:
        key = f"clarion:policy:{self.alert.id}"
        client = get_redis()
        count = client.incr(key)
        client.expire(key, POLICY_WINDOW)
        if count < POLICY_PAUSE_AFTER and outcome.stage not in ("mail", "data"):
            return True
        reason = (
            f"Paused: {server} refused our messages for a policy or authentication reason "
            f"({outcome.reply}). The problem is our sending — sender address, DKIM or SPF, the "
            "relay login or our reputation — not the readers. Fix it, then resume."
        )
        self.flush()
        with session_scope() as session:
            alert = session.get(Alert, self.alert.id)
            if alert is not None and alert.status == AlertStatus.SENDING:
                with contextlib.suppress(InvalidTransition):
                    sending.pause(session, alert, reason=reason)
        self.halted = AlertStatus.PAUSED
        return False

    def flush(self) -> None:
        """Record pending outcomes in bulk; notice a pause or cancel; recheck eligibility."""
        now = utcnow()
        pending, self.pending = self.pending, []
        with session_scope() as session:
            if pending:
                record_outcomes(session, pending, now)
                for result in pending:
                    if result.bounce is not None:
                        record_bounce(session, self.alert.id, result)
            status = session.scalar(select(Alert.status).where(Alert.id == self.alert.id))
            if status != AlertStatus.SENDING:
                self.halted = AlertStatus(status) if status else AlertStatus.CANCELLED
            self._recheck(session)
        self._count_rate(sum(1 for r in pending if r.tried))
        self.flushed = time.monotonic()

    def _recheck(self, session: Session) -> None:
        # A reader who unsubscribes while the batch runs gets nothing more from it.
        waiting = [r for r in self.rows if r.eligible and r.delivery_id not in self.handled]
        mark_eligibility(session, waiting, self.lists)

    def _count_rate(self, n: int) -> None:
        if not n:
            return
        key = f"clarion:rate:{self.alert.id}:{int(time.time()) // RATE_BUCKET}"
        try:
            pipe = get_redis().pipeline()
            pipe.incrby(key, n)
            pipe.expire(key, RATE_BUCKET * (RATE_SPAN + 2))
            pipe.execute()
        except redis.RedisError:
            pass  # the rate shown in the admin is a nicety; sending must not stop for it

    def _release_unhandled(self) -> None:
        unhandled = [r.delivery_id for r in self.rows if r.delivery_id not in self.handled]
        if not unhandled:
            return
        cancelled = self.halted == AlertStatus.CANCELLED
        values: dict[str, Any] = {"claimed_at": None, "updated_at": utcnow()}
        if cancelled:
            values.update(status=DeliveryStatus.SKIPPED.value, last_reply="not sent: cancelled")
        else:
            values.update(status=DeliveryStatus.QUEUED.value)
        with session_scope() as session:
            session.execute(
                update(_table)
                .where(
                    among(session, _table.c.id, unhandled),
                    _table.c.status == DeliveryStatus.SENDING.value,
                )
                .values(**values)
            )


def send_batch(alert_id: int, first_id: int, last_id: int) -> int:
    """Claim, send and record one batch; then refill the window. Returns messages sent."""
    settings = get_settings()
    now = utcnow()
    with session_scope() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.SENDING:
            return 0
        ids = claim(session, alert_id, first_id, last_id, now)
        batches.mark_running(session, alert_id, first_id, now)
        rows = load_recipients(session, ids, alert.frozen_meta["audience"]["lists"]) if ids else []
    run = BatchRun(alert, rows, settings, transport_for(settings))
    if rows:
        run.run()
    with session_scope() as session:
        batches.close(session, alert_id, first_id, last_id)
        if run.retry_in is not None:
            _postpone(session, alert_id, first_id, run.retry_in)
    after_batch(alert_id)
    return run.sent


def _postpone(session: Session, alert_id: int, first_id: int, seconds: float) -> None:
    # No server could be had: try this batch again a little later, not at once.
    session.execute(
        update(DeliveryBatch)
        .where(DeliveryBatch.alert_id == alert_id, DeliveryBatch.first_id == first_id)
        .values(due_at=utcnow() + timedelta(seconds=seconds))
    )


def after_batch(alert_id: int) -> None:
    """Hand out the next batch and see whether the alert is finished."""
    try:
        batches.refill(alert_id)
    except (redis.RedisError, OSError) as exc:
        # Redis or the broker is away: the sweep hands the work out again when it is back.
        log.warning("alert %s: could not hand out more batches: %s", alert_id, exc)
    finish_if_done(alert_id)


# --- The sweep ----------------------------------------------------------------------------


def reclaim_stale() -> dict[str, int]:
    """Periodic: put back abandoned claims, re-dispatch lost dispatches, refill, finish."""
    settings = get_settings()
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.send_lease_seconds)
    recent = now - timedelta(days=1)
    stats = {"reclaimed": 0, "alerts": 0}
    with session_scope() as session:
        alerts = session.execute(
            select(Alert.id, Alert.status, Alert.dispatched_at).where(
                or_(
                    Alert.status.in_([AlertStatus.SENDING, AlertStatus.PAUSED]),
                    and_(Alert.status == AlertStatus.CANCELLED, Alert.finished_at > recent),
                )
            )
        ).all()
        for alert_id, status, _ in alerts:
            stats["reclaimed"] += _reclaim(session, alert_id, AlertStatus(status), cutoff)
    client = get_redis()
    for alert_id, status, dispatched_at in alerts:
        if AlertStatus(status) != AlertStatus.SENDING:
            continue
        stats["alerts"] += 1
        if dispatched_at is None and not client.exists(f"clarion:dispatching:{alert_id}"):
            enqueue_dispatch(alert_id)
        batches.refill(alert_id)
        finish_if_done(alert_id)
    return stats


def _reclaim(session: Session, alert_id: int, status: AlertStatus, cutoff: datetime) -> int:
    if status == AlertStatus.CANCELLED:
        values = {"status": DeliveryStatus.SKIPPED.value, "last_reply": "not sent: cancelled"}
    else:
        values = {"status": DeliveryStatus.QUEUED.value}
    ids = list(
        session.scalars(
            update(_table)
            .where(
                _table.c.alert_id == alert_id,
                _table.c.status == DeliveryStatus.SENDING.value,
                _table.c.claimed_at < cutoff,
            )
            .values(claimed_at=None, updated_at=utcnow(), **values)
            .returning(_table.c.id)
        )
    )
    if ids and status != AlertStatus.CANCELLED:
        batches.reopen(session, alert_id, ids)
    return len(ids)


# --- Progress helpers ---------------------------------------------------------------------


def recent_rate(alert: Alert) -> float:
    """Messages a second handed to SMTP servers over the last half-minute (0 when idle)."""
    if alert.status != AlertStatus.SENDING:
        return 0.0
    now = time.time()
    current = int(now) // RATE_BUCKET
    keys = [f"clarion:rate:{alert.id}:{current - i}" for i in range(RATE_SPAN)]
    try:
        counts = get_redis().mget(keys)
    except redis.RedisError:
        return 0.0
    total = sum(int(c) for c in counts if c)
    span = (RATE_SPAN - 1) * RATE_BUCKET + (now % RATE_BUCKET)
    started = alert.started_at.timestamp() if alert.started_at else now - span
    return total / max(1.0, min(span, now - started))
