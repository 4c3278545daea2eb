"""The recent sending rate of an alert (per-5-second counters in Redis, for progress and ETA),
how long batches take (buckets in Redis that every worker adds to, for /metrics), and whether
any send is running right now (a marker the sending workers keep fresh; webhooks are paced
while it is up)."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

import redis

from clarion.models import Alert, AlertStatus
from clarion.redisconn import get_redis

RATE_BUCKET = 5  # seconds per bucket of the recent-rate counters
RATE_SPAN = 6  # buckets averaged
# Up while some worker is sending or dispatching: renewed at each checkpoint of a batch (every
# second or so) and each page of a dispatch, so it lapses a few seconds after the last of them
# (a send paused, finished, or with no worker left) without anyone having to take it down.
SENDING_KEY = "clarion:sending:now"
SENDING_TTL = 5


def count_sent(alert_id: int, n: int) -> None:
    """Add `n` messages handed to SMTP servers just now to the alert's rate counters (and say
    that a send is running)."""
    key = f"clarion:rate:{alert_id}:{int(time.time()) // RATE_BUCKET}"
    try:
        pipe = get_redis().pipeline()
        pipe.set(SENDING_KEY, alert_id, ex=SENDING_TTL)
        if n:
            pipe.incrby(key, n)
            pipe.expire(key, RATE_BUCKET * (RATE_SPAN + 2))
        pipe.execute()
    except redis.RedisError:
        pass  # the rate shown in the admin is a nicety; sending must not stop for it


def note_sending(alert_id: int) -> None:
    """Say that a send is running (dispatch writing an alert's ledger, a batch starting)."""
    with contextlib.suppress(redis.RedisError):  # only webhooks' pace depends on it
        get_redis().set(SENDING_KEY, alert_id, ex=SENDING_TTL)


def sending_now() -> bool:
    """True while some worker is sending or dispatching an alert (False if Redis is away)."""
    try:
        return bool(get_redis().exists(SENDING_KEY))
    except redis.RedisError:
        return False


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


def average_rate(sent: int, started_at: datetime | None, finished_at: datetime | None) -> float:
    """Messages a second over a whole send, once it has ended (0 when the times are unknown)."""
    if not sent or started_at is None or finished_at is None:
        return 0.0
    return sent / max(1.0, (finished_at - started_at).total_seconds())


BATCH_SECONDS_KEY = "clarion:batch_seconds"
BATCH_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def record_batch(seconds: float) -> None:
    """Count one batch's sending time into every bucket it fits (cumulative, as Prometheus)."""
    fields = [str(b) for b in BATCH_BUCKETS if seconds <= b] + ["+Inf"]
    try:
        pipe = get_redis().pipeline()
        for name in fields:
            pipe.hincrby(BATCH_SECONDS_KEY, name, 1)
        pipe.hincrbyfloat(BATCH_SECONDS_KEY, "sum", seconds)
        pipe.execute()
    except redis.RedisError:
        pass  # a figure for the operators; sending must not stop for it


def batch_seconds() -> tuple[list[tuple[str, float]], float]:
    """(upper bound, batches at most that long) for each bucket and +Inf, and the total time."""
    raw = {k.decode(): float(v) for k, v in get_redis().hgetall(BATCH_SECONDS_KEY).items()}
    buckets = [(str(b), raw.get(str(b), 0.0)) for b in BATCH_BUCKETS]
    return [*buckets, ("+Inf", raw.get("+Inf", 0.0))], raw.get("sum", 0.0)
