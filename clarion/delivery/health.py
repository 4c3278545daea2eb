"""Why a send is not moving: no worker alive, SMTP servers unreachable, Redis down.

Workers announce themselves in Redis every few seconds (a sorted set scored by when the
announcement runs out); the transport notes when each SMTP server was first found unreachable.
The progress page and `clarion alerts send --wait` put the reasons beside a stalled send.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis

from clarion.config import Settings
from clarion.delivery.transport import Outages
from clarion.i18n import admin_gettext
from clarion.redisconn import get_redis

WORKERS_KEY = "clarion:workers"
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL = 20.0  # a worker silent this long counts as gone


def worker_heartbeat(name: str, queues: list[str]) -> None:
    """Say that worker `name`, consuming `queues`, is alive (call every HEARTBEAT_SECONDS)."""
    client = get_redis()
    now = time.time()
    pipe = client.pipeline()
    pipe.zadd(WORKERS_KEY, {f"{name}|{','.join(sorted(queues))}": now + HEARTBEAT_TTL})
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now)
    pipe.expire(WORKERS_KEY, int(HEARTBEAT_TTL * 3))
    pipe.execute()


def workers_alive(queue: str) -> list[str]:
    """Names of the workers heard from lately that consume `queue`."""
    members = get_redis().zrangebyscore(WORKERS_KEY, time.time(), "+inf")
    alive = []
    for member in members:
        name, _, queues = member.decode().rpartition("|")
        if queue in queues.split(","):
            alive.append(name)
    return alive


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stall_reasons(settings: Settings) -> list[str]:
    """What stands in the way of sending right now (empty when nothing does)."""
    try:
        get_redis().ping()
    except redis.RedisError as exc:
        return [
            admin_gettext(
                "Redis is unreachable (%(error)s): workers get no batches and no rate tokens",
                error=exc,
            )
        ]
    reasons = []
    if not workers_alive("bulk"):
        reasons.append(
            admin_gettext(
                "no worker is running for the bulk queue: start one (%(command)s, or clarion up)",
                command="celery -A tasks worker -Q default,hooks,bulk",
            )
        )
    outages = Outages(get_redis())
    down = [(server, outages.since(server)) for server in settings.smtp_servers]
    if down and all(since is not None for _, since in down):
        for server, since in down:
            assert since is not None
            first, error = since
            reasons.append(
                admin_gettext(
                    "SMTP server %(server)s unreachable since %(moment)s: %(error)s",
                    server=server.name,
                    moment=_clock(first),
                    error=error,
                )
            )
    return reasons
