"""Clicks and opens buffered in a Redis stream, written to the database in batches.

The web process only appends to the stream (one XADD), so a click never waits on the
database. A periodic task reads the stream through a consumer group, inserts the rows with the
stream entry id as `event_id` (unique), commits, and only then acknowledges and deletes the
entries. A flusher that dies between commit and acknowledgement leaves its entries pending;
the next flush claims them after CLAIM_IDLE_MS and inserts them again, which the unique
`event_id` turns into a no-op. So nothing is lost and nothing is counted twice, however many
flushers run at once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from clarion.db import session_scope
from clarion.models import Alert, Click, Delivery, Open
from clarion.redisconn import get_redis

log = logging.getLogger(__name__)

STREAM = "clarion:events"
GROUP = "flush"
BATCH = 1000
MAX_BATCHES = 100  # per flush run; the next run carries on
CLAIM_IDLE_MS = 60_000  # an entry read this long ago and not acknowledged: its flusher died
# Link scanners (mail security gateways) fetch every link within seconds of delivery.
SCANNER_WINDOW = timedelta(seconds=10)
CLICK, OPEN = b"c", b"o"

Entry = tuple[bytes, dict[bytes, bytes]]


def record_click(delivery_id: int, alert_id: int, link_index: int) -> str:
    """Buffer one click; returns its event id."""
    fields = {"k": CLICK, "d": delivery_id, "a": alert_id, "n": link_index}
    return get_redis().xadd(STREAM, fields).decode()  # type: ignore[arg-type, union-attr]


def record_open(delivery_id: int, alert_id: int) -> str:
    """Buffer one open; returns its event id."""
    fields = {"k": OPEN, "d": delivery_id, "a": alert_id}
    return get_redis().xadd(STREAM, fields).decode()  # type: ignore[arg-type, union-attr]


def backlog() -> int:
    """Entries still in the stream (not yet written and acknowledged)."""
    return int(get_redis().xlen(STREAM))


def _consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _ensure_group(client: redis.Redis) -> None:
    try:
        # From the very beginning, so that entries added before the group existed are read too.
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _claim_stale(client: redis.Redis, consumer: str, idle_ms: int) -> list[Entry]:
    cursor: bytes | str = "0-0"
    while True:
        cursor, entries, *_deleted = client.xautoclaim(
            STREAM, GROUP, consumer, min_idle_time=idle_ms, start_id=cursor, count=BATCH
        )
        entries = [e for e in entries if e[1]]  # entries deleted meanwhile come back empty
        if entries or cursor in (b"0-0", "0-0"):  # found some, or scanned every pending one
            return entries


def _read_new(client: redis.Redis, consumer: str) -> list[Entry]:
    found = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=BATCH)
    return found[0][1] if found else []


@dataclass
class FlushResult:
    """What a flush run did."""

    events: int = 0
    clicks: int = 0
    opens: int = 0
    dropped: int = 0  # events of alerts deleted meanwhile


def flush(claim_idle_ms: int = CLAIM_IDLE_MS, max_batches: int = MAX_BATCHES) -> FlushResult:
    """Write buffered events to the database in batches; safe to run concurrently."""
    client = get_redis()
    _ensure_group(client)
    consumer = _consumer()
    result = FlushResult()
    for _ in range(max_batches):
        entries = _claim_stale(client, consumer, claim_idle_ms) or _read_new(client, consumer)
        if not entries:
            break
        with session_scope() as session:
            _write(session, entries, result)
        ids = [entry_id for entry_id, _fields in entries]
        pipe = client.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        result.events += len(entries)
    if result.dropped:
        log.info("dropped %d events of alerts deleted meanwhile", result.dropped)
    return result


def _write(session: Session, entries: Sequence[Entry], result: FlushResult) -> None:
    delivery_ids = {int(fields[b"d"]) for _id, fields in entries}
    deliveries = {
        row.id: row
        for row in session.execute(
            select(Delivery.id, Delivery.alert_id, Delivery.subscriber_id, Delivery.sent_at).where(
                Delivery.id.in_(delivery_ids)
            )
        )
    }
    claimed_alerts = {int(fields[b"a"]) for _id, fields in entries}
    alerts = set(session.scalars(select(Alert.id).where(Alert.id.in_(claimed_alerts))))
    clicks, opens = [], []
    for entry_id, fields in entries:
        row = _row(entry_id, fields, deliveries, alerts)
        if row is None:
            result.dropped += 1
        elif fields[b"k"] == CLICK:
            clicks.append(row)
        else:
            opens.append({k: row[k] for k in ("event_id", "alert_id", "delivery_id", "opened_at")})
    if clicks:
        session.execute(_insert_ignoring_duplicates(session, Click), clicks)
    if opens:
        session.execute(_insert_ignoring_duplicates(session, Open), opens)
    result.clicks += len(clicks)
    result.opens += len(opens)


def _row(
    entry_id: bytes, fields: dict[bytes, bytes], deliveries: dict, alerts: set[int]
) -> dict[str, Any] | None:
    at = event_time(entry_id)
    delivery = deliveries.get(int(fields[b"d"]))
    alert_id = delivery.alert_id if delivery else int(fields[b"a"])
    if alert_id not in alerts:
        return None
    sent_at = delivery.sent_at if delivery else None
    return {
        "event_id": entry_id.decode(),
        "alert_id": alert_id,
        "delivery_id": delivery.id if delivery else None,
        "subscriber_id": delivery.subscriber_id if delivery else None,
        "link_index": int(fields.get(b"n", 0)),
        "clicked_at": at,
        "opened_at": at,
        # Not yet recorded as sent means the 250 came back moments ago: no person clicks that fast.
        "suspected_scanner": sent_at is None or at - sent_at < SCANNER_WINDOW,
    }


def event_time(entry_id: bytes | str) -> datetime:
    """When an event happened: the millisecond time Redis put in its stream entry id."""
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return datetime.fromtimestamp(int(raw.split("-", 1)[0]) / 1000, UTC)


def _insert_ignoring_duplicates(session: Session, model: type[Click] | type[Open]):
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=["event_id"])
