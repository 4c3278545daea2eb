"""Sending one batch: stream its rows over SMTP, judge each reply, record, stop when told.

A batch stops at a checkpoint (every FLUSH_EVERY messages or FLUSH_SECONDS) when the alert was
paused or cancelled, or when the servers keep dropping it; whatever it did not handle goes back
to the queue. While it makes progress it renews its claims, its SMTP slot and its batch lease,
so a slow server keeps its connection instead of the batch being handed out again.

Each message's fate is journalled in Redis as it happens (clarion.delivery.journal), so a worker
killed between flushes costs at most the messages in flight. When Redis or the database fails
mid-batch the batch ends cleanly: outcomes are written first (retried while the database comes
back), unsent rows go back to the queue, and only then is anything given back to Redis.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from clarion import bounce_classify
from clarion.config import Settings
from clarion.db import among, session_scope, utcnow
from clarion.delivery import batches, rates
from clarion.delivery.journal import Journal
from clarion.delivery.ledger import (
    Claimed,
    Result,
    mark_eligibility,
    record_outcomes,
    table,
)
from clarion.delivery.messages import AlertFrame, Recipient, Skeleton, Skeletons
from clarion.delivery.refusals import Finding, RefusalPolicy
from clarion.delivery.smtpclient import Outcome, Reply, StreamBroken
from clarion.delivery.transport import Connection, NoServer, Transport
from clarion.models import Alert, AlertStatus, BounceClass, DeliveryStatus
from clarion.redisconn import get_redis

log = logging.getLogger(__name__)

# Outcomes are recorded, and a pause, cancel or unsubscribe noticed, after this many messages
# or this many seconds, whichever comes first.
FLUSH_EVERY = 250
FLUSH_SECONDS = 1.0
MAX_BROKEN = 3  # broken connections a batch puts up with before it retries later
RECORD_PATIENCE = 60.0  # seconds the last outcomes wait for an unreachable database
OUTAGE_RETRY = 5.0  # seconds before a batch ended by an outage is handed out again


class Verdict:
    """What an SMTP outcome means for the row."""

    SENT = "sent"
    DEFER = "defer"
    FAIL = "fail"
    POLICY = "policy"  # our sending is refused: not the reader's fault; pause if it repeats


def verdict(outcome: Outcome) -> str:
    """250 sent; 4xx deferred; a refusal of our login, envelope sender or message, or one the
    bounce rules blame on our sending (5.7.x policy, blocklists, reputation), policy; else
    failed (and judged by the bounce policy)."""
    reply = outcome.reply
    if outcome.stage == "end" and 200 <= reply.code < 300:
        return Verdict.SENT
    if 400 <= reply.code < 500:
        return Verdict.DEFER
    if reply.code in (530, 535) or outcome.stage in ("mail", "data"):
        return Verdict.POLICY  # refusing our login, envelope sender or DATA is about us
    klass, _ = bounce_classify.classify_status(reply.status, reply.text, str(reply.code))
    return Verdict.POLICY if klass is BounceClass.SENDER_FAULT else Verdict.FAIL


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before retry number `attempts`: exponential, capped, with jitter."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    return delay * random.uniform(0.8, 1.2)  # spreads retries; not a secret


_transports: dict[tuple, Transport] = {}


def transport_for(settings: Settings) -> Transport:
    """The process's transport for the configured servers (connections are per batch)."""
    key = (settings.smtp_servers, settings.redis_url)
    if key not in _transports:
        _transports[key] = Transport(
            settings.smtp_servers, get_redis(), lease=settings.send_lease_seconds
        )
    return _transports[key]


_skeletons: dict[tuple[int, str, str], Skeletons] = {}


def skeleton_for(alert: Alert, settings: Settings) -> Skeletons:
    """The alert's message skeletons (one per version), built once per process and alert."""
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
        skeleton = _skeletons[key] = Skeletons.build(frame, alert.frozen_versions or {}, settings)
    return skeleton


class Job:
    """One row on its way: the envelope now, the message bytes when the stream asks."""

    __slots__ = ("eight_bit", "envelope_from", "message_id", "rcpt", "row", "skeleton", "smtputf8")

    def __init__(self, row: Claimed, skeleton: Skeleton) -> None:
        self.row = row
        self.skeleton = skeleton
        self.envelope_from, self.rcpt, self.smtputf8 = skeleton.envelope(row.delivery_id, row.email)
        self.eight_bit = self.smtputf8  # the parts are base64: only UTF-8 headers are 8-bit
        self.message_id = ""

    def data(self) -> bytes:
        row = self.row
        recipient = Recipient(row.delivery_id, row.uid, row.email, row.name)
        message = self.skeleton.build(recipient, self.envelope_from)
        self.message_id = message.message_id
        return message.data


@dataclass
class BatchRun:
    """Sending the claimed rows of one batch, recording outcomes as it goes; refusals go to
    `refusals` (the bounce policy, through the port in clarion.delivery.refusals)."""

    alert: Alert
    rows: list[Claimed]
    settings: Settings
    transport: Transport
    refusals: RefusalPolicy
    pending: list[Result] = field(default_factory=list)
    handled: set[int] = field(default_factory=set)
    halted: AlertStatus | None = None
    conn: Connection | None = None
    retry_in: float | None = None
    stopped: bool = False
    broken: int = 0
    outage: str | None = None  # why the batch ended early, when Redis or the database failed

    def __post_init__(self) -> None:
        self.flushed = time.monotonic()
        self.renewed = time.monotonic()
        self.lists = self.alert.frozen_meta["audience"]["lists"]
        self.skeletons = skeleton_for(self.alert, self.settings)
        self.journal = Journal(self.transport.client, self.alert.id)
        self.sent = 0
        self.in_doubt = 0

    def run(self) -> None:
        """Send every eligible row; whatever is not handled goes back to the queue."""
        queue = deque(self.rows)
        try:
            while queue and self.halted is None and not self.stopped:
                self._stream(queue)
        except NoServer as exc:
            self.retry_in = exc.retry_in
        except redis.RedisError as exc:
            self._ended_by(f"Redis unreachable: {exc}")
        except DBAPIError as exc:
            self._ended_by(f"database unreachable: {exc.orig or exc}")
        finally:
            # Outcomes first: nothing that can fail stands between a 250 and its record.
            self._record_all()
            self._release_unhandled()
            self._hang_up()

    def _ended_by(self, outage: str) -> None:
        log.warning("alert %s: batch ended early: %s", self.alert.id, outage)
        self.outage = outage
        self.retry_in = OUTAGE_RETRY

    def _record_all(self) -> None:
        """Write what is pending, waiting a while for a database that is coming back."""
        deadline = time.monotonic() + RECORD_PATIENCE
        delay = 0.2
        while True:
            try:
                self.flush()
                return
            except redis.RedisError:
                return  # recorded; only the journal's clean-up failed (and is harmless)
            except DBAPIError as exc:
                if time.monotonic() > deadline:
                    # The journal still holds them: the sweep records them before re-sending.
                    log.error("alert %s: outcomes not recorded: %s", self.alert.id, exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _hang_up(self) -> None:
        """QUIT the SMTP server and give back the slot; failures here cost nothing."""
        self.journal.close()
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        try:
            conn.close()
        except redis.RedisError as exc:
            # The slot's lease runs out by itself.
            log.warning("alert %s: SMTP slot not released: %s", self.alert.id, exc)

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
            for job in exc.in_doubt:
                # The body went out but no reply came: it may have been delivered.
                self.in_doubt += 1
                self._defer(job.row, f"connection error: {exc}", conn.server.name)
            queue.extendleft(job.row for job in reversed(exc.unsent))
            self.conn = None
            conn.close()
            self.transport.breaker.failure(conn.server)
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
            job = Job(row, self.skeletons.for_reader(row.language))
            if not conn.client.carries(job.smtputf8):
                self._unsendable(row, conn.server.name)
                continue
            conn.acquire()
            # Before the body is written: from here on the reader may receive it.
            self.journal.attempt(row.delivery_id)
            yield job

    def _checkpoint(self) -> bool:
        """Flush and renew the leases when due; False when the batch must stop."""
        if self.halted is not None:
            return False
        now = time.monotonic()
        if len(self.pending) >= FLUSH_EVERY or now - self.flushed > FLUSH_SECONDS:
            self.flush()
        if now - self.renewed > self.settings.send_lease_seconds / 4:
            self._renew()
        return self.halted is None

    def _renew(self) -> None:
        """Still making progress: extend the claims, the batch's lease and the SMTP slot."""
        now = utcnow()
        ids = [r.delivery_id for r in self.rows if r.delivery_id not in self.handled]
        with session_scope() as session:
            if ids:
                session.execute(
                    update(table)
                    .where(
                        among(session, table.c.id, ids),
                        table.c.status == DeliveryStatus.SENDING.value,
                    )
                    .values(claimed_at=now)
                )
                batches.renew(session, self.alert.id, min(ids), now)
        if self.conn is not None:
            self.conn.renew()
        self.renewed = time.monotonic()

    def _skip(self, row: Claimed) -> None:
        reply = "not sent: unsubscribed or suppressed before sending"
        self._result(Result(row, DeliveryStatus.SKIPPED, reply, tried=0))

    def _unsendable(self, row: Claimed, server: str) -> None:
        """An address only SMTPUTF8 can carry, on a server without it: this reader fails, with
        the reason. Neither a bounce (the address may be fine) nor a refusal of our sending
        (nothing was refused), so it never counts towards a pause; nothing went out."""
        reply = (
            f"not sent: the address has a non-ASCII local part and {server} does not offer "
            "SMTPUTF8 (RFC 6531); send through a server that does"
        )
        self._result(Result(row, DeliveryStatus.FAILED, reply, tried=0, server=server))

    def _result(self, result: Result) -> None:
        self.pending.append(result)
        self.handled.add(result.row.delivery_id)

    def _judge(self, row: Claimed, outcome: Outcome, message_id: str, server: str) -> bool:
        kind = verdict(outcome)
        reply = str(outcome.reply)
        # The result is pending before the journal is written: a Redis error in the journal
        # must not leave a delivered message looking unsent.
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
            self.journal.sent(row.delivery_id, server, message_id, reply)
            return True
        if kind == Verdict.FAIL:
            self._fail(row, outcome.reply, server)
        else:
            self._defer(row, reply, server)
        self.journal.not_taken(row.delivery_id)
        if kind == Verdict.POLICY:
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
        if klass is not BounceClass.HARD:
            klass = BounceClass.SOFT  # a final refusal that proves nothing is counted, not ignored
        status = reply.status or str(reply.code)
        result = Result(row, DeliveryStatus.FAILED, str(reply), server=server)
        result.bounce = (klass, status, reason)
        self._result(result)

    def _policy_refusal(self, outcome: Outcome, server: str) -> bool:
        """Report a refusal of our sending to the policy; False when it paused the alert."""
        detail = f"{server} answered {outcome.reply}"
        # Refusing our envelope sender or the message itself is about us: pause at once.
        immediate = outcome.stage in ("mail", "data")
        with session_scope() as session:
            paused = self.refusals.sender_fault(session, self.alert.id, detail, immediate)
        if not paused:
            return True
        self.flush()
        self.halted = AlertStatus.PAUSED
        return False

    def _finding(self, result: Result) -> Finding:
        assert result.bounce is not None
        klass, status, reason = result.bounce
        return Finding(
            classification=klass,
            status=status,
            reason=f"{reason}: {result.reply}",
            email=result.row.email,
            source="delivery",
            subscriber_id=result.row.subscriber_id,
            delivery_id=result.row.delivery_id,
            alert_id=self.alert.id,
            evidence=result.reply.encode(),
        )

    def flush(self) -> None:
        """Record pending outcomes in bulk; notice a pause or cancel; recheck eligibility.

        The outcomes stay pending until the commit succeeds: a database error loses none."""
        now = utcnow()
        pending = self.pending
        with session_scope() as session:
            if pending:
                record_outcomes(session, pending, now)
                for result in pending:
                    if result.bounce is not None:
                        self.refusals.bounced(session, self._finding(result))
            if self.in_doubt:
                _add_possible_duplicates(session, self.alert.id, self.in_doubt)
            status = session.scalar(select(Alert.status).where(Alert.id == self.alert.id))
            if status != AlertStatus.SENDING:
                self.halted = AlertStatus(status) if status else AlertStatus.CANCELLED
            self._recheck(session)
        self.pending, self.in_doubt = [], 0
        self.flushed = time.monotonic()
        rates.count_sent(self.alert.id, sum(1 for r in pending if r.tried))
        self.journal.settle([r.row.delivery_id for r in pending])

    def _recheck(self, session: Session) -> None:
        # A reader who unsubscribes while the batch runs gets nothing more from it.
        waiting = [r for r in self.rows if r.eligible and r.delivery_id not in self.handled]
        mark_eligibility(session, waiting, self.lists)

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
        try:
            with session_scope() as session:
                session.execute(
                    update(table)
                    .where(
                        among(session, table.c.id, unhandled),
                        table.c.status == DeliveryStatus.SENDING.value,
                    )
                    .values(**values)
                )
        except DBAPIError as exc:
            # Left claimed: the sweep puts them back once their lease has run out.
            log.warning("alert %s: unsent rows not released: %s", self.alert.id, exc)


def _add_possible_duplicates(session: Session, alert_id: int, n: int) -> None:
    """Count readers who may get a message twice (sent to, no answer, to be sent again)."""
    session.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(possible_duplicates=Alert.possible_duplicates + n)
    )
