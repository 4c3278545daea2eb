"""The delivery engine: dispatch writes the ledger, send_batch sends a range of it, the sweep heals.

The ledger (`deliveries`) is the single truth: one row per (alert, subscriber). A batch claims
its rows (queued → sending) in one UPDATE, loads its readers in one query, checks once more that
each is still subscribed and not suppressed, sends over reused SMTP connections under the shared
rate limit, and records outcomes in bulk (clarion.delivery.ledger, .batchrun). A crash loses
nothing: claims older than the lease are put back by the sweep, after it has read the send
journal (clarion.delivery.journal): what the journal shows as sent is recorded as sent, so a
reader gets two copies only if the worker died with that message in flight — at most the one or
two messages in flight on each of its connections, counted on the alert as possible duplicates.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import redis
from sqlalchemy import and_, bindparam, func, literal, or_, select, true, update
from sqlalchemy.orm import Session

from clarion import jobqueue
from clarion.alerts import segments
from clarion.config import get_settings
from clarion.db import among, insert_for, session_factory, session_scope, utcnow
from clarion.delivery import batches, journal, members, rates, sending, welcome
from clarion.delivery.batchrun import BatchRun, transport_for
from clarion.delivery.ledger import claim, load_recipients, table
from clarion.delivery.refusals import RefusalPolicyFactory
from clarion.errors import InvalidTransition
from clarion.models import (
    Alert,
    AlertRole,
    AlertStatus,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
)
from clarion.redisconn import get_redis
from clarion.tracking import eventstream, linkmap

log = logging.getLogger(__name__)

FIRST_PAGE = 1000  # small, so that the first batches go out while dispatch carries on
MAX_PAGE = 20000
MAX_PAGES_PER_CALL = 10_000  # 200 million readers; beyond, the task hands on to a fresh one
DISPATCH_TASK = "tasks.delivery.dispatch"
OPEN_ROLES = (AlertRole.WELCOME, AlertRole.SERIES_STEP)
OPEN_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


# --- Dispatch -----------------------------------------------------------------------------


def enqueue_dispatch(alert_id: int) -> None:
    """Ask a worker to dispatch (or carry on dispatching and handing out) an alert's send."""
    _dispatch_heartbeat(alert_id)
    jobqueue.enqueue(DISPATCH_TASK, alert_id)


def _dispatch_heartbeat(alert_id: int) -> None:
    lease = get_settings().send_lease_seconds
    get_redis().set(f"clarion:dispatching:{alert_id}", b"1", ex=lease)
    rates.note_sending(alert_id)


def _written_up_to(session: Session, alert_id: int) -> int:
    """The highest subscriber id in the alert's ledger: where a new dispatch carries on."""
    return (
        session.scalar(
            select(func.max(Delivery.subscriber_id)).where(Delivery.alert_id == alert_id)
        )
        or 0
    )


def _write_page(
    session: Session, alert: Alert, after: int, upto: int, chosen: members.Page | None = None
) -> list[tuple[int, int]]:
    """Insert the recipients with ids in (after, upto] (of a segment send, those chosen for the
    page), server-side; returns (delivery id, subscriber id)."""
    page = sending.recipients_query(session, alert, after, upto, chosen).subquery()
    rows = select(
        literal(alert.id),
        page.c.id,
        literal(DeliveryStatus.QUEUED.value),
        literal(0),
        literal(""),
        literal(utcnow(), table.c.updated_at.type),
    ).where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
    stmt = (
        insert_for(session)(table)
        .from_select(
            ["alert_id", "subscriber_id", "status", "attempts", "last_reply", "updated_at"], rows
        )
        .on_conflict_do_nothing()
        .returning(table.c.id, table.c.subscriber_id)
    )
    return [(r[0], r[1]) for r in session.execute(stmt)]


def dispatch(alert_id: int) -> int:
    """Write the ledger page by page, handing out batches as soon as each page is committed.

    A page is a range of subscriber ids (members.span_end). Where to start is what is
    committed: the highest subscriber id in the ledger, so a crash between pages loses and
    repeats nothing (the ledger's unique (alert, subscriber) absorbs a page written twice). A
    range that yields nobody (a gap in the ids, or no one meeting the conditions) writes
    nothing, so `reached` carries the cursor past it within this call; dispatch ends when no
    reader of the lists is left above the cursor — readers who join meanwhile, with higher
    ids, are still taken. A segment send's pages are the readers its conditions chose, in a
    thread a few pages ahead (members.ReadAhead)."""
    _flush_clicks_for_reminder(alert_id)
    ahead = _read_ahead(alert_id)
    try:
        written = _write_pages(alert_id, ahead)
    finally:
        if ahead is not None:
            ahead.close()
    batches.refill(alert_id)
    finish_if_done(alert_id)
    return written


def _read_ahead(alert_id: int) -> members.ReadAhead | None:
    # A segment send: its readers are chosen beside the writer, from where the ledger ends.
    # Looked at without the write lock (SQLite): most sends have no conditions.
    with session_factory(reader=True)() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.dispatched_at is not None or not members.chooses(alert):
            return None
        after = _written_up_to(session, alert_id)
        audience = alert.frozen_meta["audience"]
    return members.ReadAhead(audience, after, FIRST_PAGE, MAX_PAGE)


def _write_pages(alert_id: int, ahead: members.ReadAhead | None) -> int:
    settings = get_settings()
    page, written, reached = FIRST_PAGE, 0, 0
    for _ in range(MAX_PAGES_PER_CALL):
        # Outside the transaction: waiting for the chooser must not hold the alert's lock.
        chosen = ahead.next() if ahead is not None else None
        with session_scope() as session:
            alert = batches.locked_alert(session, alert_id)
            if alert is None or alert.dispatched_at is not None:
                break
            if alert.status not in (AlertStatus.SENDING, AlertStatus.PAUSED):
                break
            _dispatch_heartbeat(alert_id)
            after = max(reached, _written_up_to(session, alert_id))
            if ahead is None:
                lists = alert.frozen_meta["audience"]["lists"]
                upto = members.span_end(session, lists, after, page)
            else:
                upto = None if chosen is None else chosen.upto
            if upto is None:
                alert.dispatched_at = utcnow()
                break
            # A range its conditions chose nobody in only moves the cursor: no INSERT.
            empty = upto <= after or (chosen is not None and not chosen.ids)
            rows = [] if empty else _write_page(session, alert, after, upto, chosen)
            reached = max(reached, upto)
            ids = sorted(r[0] for r in rows)
            if ids:
                batches.add_batches(session, alert_id, ids, settings.batch_size)
                alert.recipients = (alert.recipients or 0) + len(rows)
            links = list(alert.frozen_links or [])
        page = min(page * 4, MAX_PAGE)
        if not ids:
            continue
        # Before any of these is sent: a click must find its link in Redis, not the database.
        linkmap.remember_links(alert_id, links)
        linkmap.remember_deliveries(alert_id, ids)
        written += len(rows)
        batches.refill(alert_id)
    else:
        enqueue_dispatch(alert_id)  # a very long list: a fresh task carries on from the ledger
    return written


def _flush_clicks_for_reminder(alert_id: int) -> None:
    # A reminder leaves out readers who clicked a share link (clarion.alerts.hashtag_days), and
    # an audience's conditions may ask who clicked (clarion.alerts.segments): write the clicks
    # still buffered in Redis first, so that those of the last few seconds count too.
    with session_scope() as session:
        alert = session.get(Alert, alert_id)
        due = alert is not None and not alert.dispatched_at
        if due:
            audience = (alert.frozen_meta or {}).get("audience") or {}
            reads_clicks = segments.uses_clicks(audience.get("conditions"))
            due = alert.role == AlertRole.REMINDER or reads_clicks
    if due:
        try:
            eventstream.flush()
        except redis.RedisError as exc:
            log.warning("reminder %s: buffered clicks not written first: %s", alert_id, exc)


def finish_if_done(alert_id: int) -> bool:
    """Mark the alert SENT once dispatch is complete and no row is left open."""
    with session_scope() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.SENDING or alert.dispatched_at is None:
            return False
        if alert.role in OPEN_ROLES and welcome.in_use(session, alert_id):
            return False  # a welcome mail or a series step stays open for the readers to come
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


# --- One batch ----------------------------------------------------------------------------


def send_batch(alert_id: int, first_id: int, last_id: int, refusals: RefusalPolicyFactory) -> int:
    """Claim, send and record one batch; then refill the window. Returns messages sent.

    `refusals` makes the bounce policy for this batch (clarion.bounces.refusals.BatchRefusals):
    the engine cannot import it, so the caller hands it in."""
    settings = get_settings()
    now = utcnow()
    with session_scope() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.SENDING:
            return 0
        ids = claim(session, alert_id, first_id, last_id, now)
        batches.mark_running(session, alert_id, first_id, now)
        rows = load_recipients(session, ids, alert.frozen_meta["audience"]["lists"]) if ids else []
    run = BatchRun(alert, rows, settings, transport_for(settings), refusals())
    if rows:
        rates.note_sending(alert_id)  # and each checkpoint of the run, through count_sent
        began = time.monotonic()
        run.run()
        rates.record_batch(time.monotonic() - began)
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
    except (redis.RedisError, OSError, jobqueue.QueueUnavailable) as exc:
        # Redis or the broker is away: the sweep hands the work out again when it is back.
        log.warning("alert %s: could not hand out more batches: %s", alert_id, exc)
    finish_if_done(alert_id)


# --- Schedules --------------------------------------------------------------------------


def start_due_alerts(now: datetime | None = None) -> list[int]:
    """Periodic: start every scheduled alert whose time has come; returns those started.

    The claim is the scheduled → sending transition, made in the same transaction as the
    freeze, on the row locked (PostgreSQL) or under the write lock (SQLite). A second beat,
    a restarted one, or an editor pressing Send at the same moment finds the alert no longer
    scheduled and leaves it: the send starts once. Dispatch is enqueued after the commit; if
    that is lost, the sweep (reclaim_stale) enqueues it again.
    """
    now = now or utcnow()
    with session_scope() as session:
        due = list(
            session.scalars(
                select(Alert.id)
                .where(Alert.status == AlertStatus.SCHEDULED, Alert.scheduled_at <= now)
                .order_by(Alert.scheduled_at, Alert.id)
            )
        )
    started = []
    for alert_id in due:
        with session_scope() as session:
            alert = batches.locked_alert(session, alert_id)
            if alert is None or alert.status != AlertStatus.SCHEDULED:
                continue  # another beat tick or an editor got there first
            if alert.scheduled_at is None or alert.scheduled_at > now:
                continue  # rescheduled meanwhile
            try:
                if sending.start_scheduled(session, alert):
                    started.append(alert_id)
            except InvalidTransition:
                session.rollback()  # lost the race after all: the winner sends it
    for alert_id in started:
        enqueue_dispatch(alert_id)
    return started


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
    """Put back the claims whose lease ran out, after settling them from the send journal."""
    stale = list(
        session.scalars(
            select(table.c.id).where(
                table.c.alert_id == alert_id,
                table.c.status == DeliveryStatus.SENDING.value,
                table.c.claimed_at < cutoff,
            )
        )
    )
    if not stale:
        return 0
    client = get_redis()
    found = journal.recover(client, alert_id, stale)
    sent = {i: e for i, e in found.items() if e.state == journal.SENT}
    in_doubt = [i for i, e in found.items() if e.state == journal.ATTEMPT]
    _record_journalled(session, sent)
    cancelled = status == AlertStatus.CANCELLED
    if cancelled:
        values = {"status": DeliveryStatus.SKIPPED.value, "last_reply": "not sent: cancelled"}
    else:
        values = {"status": DeliveryStatus.QUEUED.value}
    never_sent = [i for i in stale if i not in sent and i not in found]
    never_sent += [i for i, e in found.items() if e.state == journal.NOT_TAKEN]
    _put_back(session, never_sent, values, attempted=False)
    # Sent to, no answer seen before the worker died: an attempt, and maybe a second copy.
    doubtful = _put_back(session, in_doubt, values, attempted=True)
    if doubtful and not cancelled:
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(possible_duplicates=Alert.possible_duplicates + doubtful)
        )
    back = never_sent + in_doubt
    if back and not cancelled:
        batches.reopen(session, alert_id, back)
    session.commit()  # the ledger first: the journal entries go only once it holds them
    journal.forget(client, alert_id, list(found))
    return len(stale)


_JOURNALLED = (
    update(table)
    .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.SENDING.value)
    .values(
        status=DeliveryStatus.SENT.value,
        attempts=table.c.attempts + 1,
        claimed_at=None,
        sent_at=bindparam("b_sent", type_=table.c.sent_at.type),
        message_id=bindparam("b_message_id"),
        server=bindparam("b_server"),
        last_reply=bindparam("b_reply"),
        updated_at=bindparam("b_now", type_=table.c.updated_at.type),
    )
)


def _record_journalled(session: Session, sent: dict[int, journal.Entry]) -> None:
    """Rows the journal saw sent are recorded as sent: one statement, run for every row."""
    if not sent:
        return
    now = utcnow()
    session.connection().execute(
        _JOURNALLED,
        [
            {
                "b_id": delivery_id,
                "b_sent": entry.sent_at or now,
                "b_message_id": entry.message_id,
                "b_server": entry.server,
                "b_reply": f"{entry.reply} (recorded from the send journal: the worker stopped)",
                "b_now": now,
            }
            for delivery_id, entry in sent.items()
        ],
    )


def _put_back(session: Session, ids: list[int], values: dict, attempted: bool) -> int:
    """Rows still claimed go back (to the queue, or skipped); returns how many."""
    if not ids:
        return 0
    extra = {"attempts": table.c.attempts + 1} if attempted else {}
    result = session.execute(
        update(table)
        .where(among(session, table.c.id, ids), table.c.status == DeliveryStatus.SENDING.value)
        .values(claimed_at=None, updated_at=utcnow(), **values, **extra)
    )
    return result.rowcount or 0
