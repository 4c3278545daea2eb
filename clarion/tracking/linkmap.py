"""Which alert a delivery belongs to, and that alert's frozen links: kept in Redis for clicks.

A click must not wait on the database. When an alert is dispatched, its delivery ids and its
frozen links are written to Redis (`remember_deliveries`, `remember_links`, or `prime_alert`
for everything at once); the click path then reads Redis only. If Redis has lost an entry
(restarted without persistence, or a mail older than the map's lifetime), the entry is read
once from the database and written back: a slow click rather than a broken link.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.db import session_factory
from clarion.models import Alert, Delivery
from clarion.redisconn import get_redis

# 128 delivery ids per hash: small hashes stay in Redis's compact listpack encoding
# (about a dozen bytes per delivery instead of ~70 for a hash table).
BUCKET_BITS = 7
MAP_TTL_SECONDS = 120 * 24 * 3600
PAGE = 5000
_LINKS_CACHE_SIZE = 512
# Frozen links never change, so each process keeps them; briefly, because SQLite may give a
# deleted alert's id to the next alert created.
_LINKS_CACHE_SECONDS = 60.0

_links_cache: OrderedDict[int, tuple[float, tuple[str, ...]]] = OrderedDict()


LINKS_PREFIX = "clarion:links:"  # + alert id: a hash of link index -> URL


def bucket_key(delivery_id: int) -> str:
    """The Redis hash that holds this delivery's alert id."""
    return f"clarion:d2a:{delivery_id >> BUCKET_BITS}"


def _links_key(alert_id: int) -> str:
    return f"{LINKS_PREFIX}{alert_id}"


def remember_deliveries(alert_id: int, delivery_ids: Iterable[int]) -> None:
    """Record that these deliveries belong to the alert (called as dispatch writes them)."""
    buckets: dict[str, dict[int, int]] = {}
    for delivery_id in delivery_ids:
        buckets.setdefault(bucket_key(delivery_id), {})[delivery_id] = alert_id
    pipe = get_redis().pipeline(transaction=False)
    for key, mapping in buckets.items():
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        pipe.expire(key, MAP_TTL_SECONDS)
    pipe.execute()


def remember_links(alert_id: int, links: list[str]) -> None:
    """Record an alert's frozen links (called once the alert is frozen)."""
    if not links:
        return
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(_links_key(alert_id))
    pipe.hset(_links_key(alert_id), mapping={str(i): url for i, url in enumerate(links)})
    pipe.expire(_links_key(alert_id), MAP_TTL_SECONDS)
    pipe.execute()


def prime_alert(session: Session, alert_id: int) -> int:
    """Write an alert's links and every delivery id of it to Redis; returns the deliveries."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return 0
    remember_links(alert_id, list(alert.frozen_links or []))
    count, after = 0, 0
    while True:
        ids = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.alert_id == alert_id, Delivery.id > after)
                .order_by(Delivery.id)
                .limit(PAGE)
            )
        )
        if not ids:
            return count
        remember_deliveries(alert_id, ids)
        count += len(ids)
        after = ids[-1]


def alert_of(delivery_id: int) -> int | None:
    """The alert a delivery belongs to, from Redis; from the database only if Redis lost it."""
    raw = get_redis().hget(bucket_key(delivery_id), str(delivery_id))
    if raw is not None:
        return int(raw)
    with session_factory(reader=True)() as session:
        alert_id = session.scalar(select(Delivery.alert_id).where(Delivery.id == delivery_id))
    if alert_id is not None:
        remember_deliveries(alert_id, [delivery_id])
    return alert_id


def links_of(alert_id: int) -> tuple[str, ...]:
    """An alert's frozen links: from this process, else Redis, else the database."""
    cached = _links_cache.get(alert_id)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    raw = get_redis().hgetall(_links_key(alert_id))
    if raw:
        links = tuple(raw[k].decode() for k in sorted(raw, key=int))
    else:
        with session_factory(reader=True)() as session:
            stored = session.scalar(select(Alert.frozen_links).where(Alert.id == alert_id))
        links = tuple(stored or ())
        remember_links(alert_id, list(links))
    if links:  # an alert not frozen yet has none; never remember that
        _links_cache[alert_id] = (now + _LINKS_CACHE_SECONDS, links)
        _links_cache.move_to_end(alert_id)
        if len(_links_cache) > _LINKS_CACHE_SIZE:
            _links_cache.popitem(last=False)
    return links


def forget_cached_links() -> None:
    """Empty this process's cache (tests switch databases under one process)."""
    _links_cache.clear()
