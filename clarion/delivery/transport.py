"""Outbound SMTP servers shared by every worker: weights, send rate, connection slots, breaker.

All shared state lives in Redis, so a limit holds for all workers on all machines together:
the send rate is a token bucket, the connection limit a set of leased slots (a crashed worker's
slot expires), and a server that keeps failing is skipped for a while (circuit breaker).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from clarion.config import SmtpServer
from clarion.delivery.smtpclient import SmtpClient, SmtpConnectionError

BREAKER_THRESHOLD = 5  # consecutive failures that open the circuit
BREAKER_WINDOW = 60  # seconds a failure is remembered
BREAKER_COOLDOWN = 30  # seconds a tripped server is left alone
RATE_CHUNK = 50  # tokens asked for at once: one Redis call per chunk, not per message

_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, want = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
local granted = math.min(want, math.floor(tokens))
local wait = 0
if granted < 1 then
  granted = 0
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens - granted, 'ts', math.max(now, ts))
redis.call('EXPIRE', KEYS[1], 3600)
return {granted, tostring(wait)}
"""

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) - tonumber(ARGV[1])) + 60)
  return 1
end
return 0
"""


def _key(kind: str, server: SmtpServer) -> str:
    return f"clarion:smtp:{server.name}:{kind}"


@dataclass
class RateLimiter:
    """A token bucket per server in Redis; `rate` messages a second for everyone together."""

    client: redis.Redis
    clock: Callable[[], float] = time.time

    def take(self, server: SmtpServer, want: int) -> tuple[int, float]:
        """Up to `want` tokens now; when none, how many seconds until one is free."""
        if server.rate <= 0:
            return want, 0.0
        burst = max(1.0, server.rate / 5)  # at most a fifth of a second's worth at once
        granted, wait = self.client.eval(
            _TAKE, 1, _key("bucket", server), server.rate, burst, self.clock(), want
        )
        return int(granted), float(wait)


@dataclass
class Breaker:
    """Opens after BREAKER_THRESHOLD failures in a row; closed again after the cooldown."""

    client: redis.Redis

    def is_open(self, server: SmtpServer) -> bool:
        return bool(self.client.exists(_key("open", server)))

    def failure(self, server: SmtpServer) -> None:
        pipe = self.client.pipeline()
        pipe.incr(_key("failures", server))
        pipe.expire(_key("failures", server), BREAKER_WINDOW)
        count = pipe.execute()[0]
        if count >= BREAKER_THRESHOLD:
            self.client.set(_key("open", server), b"1", ex=BREAKER_COOLDOWN)

    def success(self, server: SmtpServer) -> None:
        self.client.delete(_key("failures", server))


@dataclass
class Slots:
    """At most `max_connections` connections to a server, across all workers, leased."""

    client: redis.Redis
    lease: float
    clock: Callable[[], float] = time.time

    def acquire(self, server: SmtpServer) -> str | None:
        holder = secrets.token_hex(8)
        now = self.clock()
        got = self.client.eval(
            _ACQUIRE,
            1,
            _key("slots", server),
            now,
            now + self.lease,
            server.max_connections,
            holder,
        )
        return holder if got else None

    def release(self, server: SmtpServer, holder: str) -> None:
        self.client.zrem(_key("slots", server), holder)

    def renew(self, server: SmtpServer, holder: str) -> None:
        """Extend a held slot's lease by another `lease` from now (only if still held)."""
        key = _key("slots", server)
        expires = self.clock() + self.lease
        pipe = self.client.pipeline()
        pipe.zadd(key, {holder: expires}, xx=True)
        pipe.expire(key, int(self.lease) + 60)
        pipe.execute()


@dataclass
class Outages:
    """When each server was first found unreachable, and why; for the progress page."""

    client: redis.Redis
    clock: Callable[[], float] = time.time

    def down(self, server: SmtpServer, error: str) -> None:
        key = _key("down", server)
        pipe = self.client.pipeline()
        pipe.hsetnx(key, "since", self.clock())
        pipe.hset(key, "error", error[:300])
        pipe.expire(key, 24 * 3600)
        pipe.execute()

    def up(self, server: SmtpServer) -> None:
        self.client.delete(_key("down", server))

    def since(self, server: SmtpServer) -> tuple[float, str] | None:
        """(first failure, last error) while the server has not been reached since."""
        found = self.client.hgetall(_key("down", server))
        if not found:
            return None
        return float(found[b"since"]), found.get(b"error", b"").decode()


def weighted_order(servers: Sequence[SmtpServer], rng: random.Random) -> list[SmtpServer]:
    """Servers in a random order where a server of weight w comes first w times as often."""
    pool = list(servers)
    order = []
    while pool:
        pick = rng.choices(pool, weights=[s.weight for s in pool])[0]
        order.append(pick)
        pool.remove(pick)
    return order


class NoServer(Exception):
    """Every server is tripped, full or unreachable right now; `retry_in` says when to retry."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"no SMTP server available; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


@dataclass
class Connection:
    """An open connection to one server holding one slot, with its own token allowance."""

    server: SmtpServer
    client: SmtpClient
    holder: str
    pool: Transport
    tokens: int = 0

    def acquire(self) -> None:
        """Wait until the shared rate limit allows one more message on this server."""
        while self.tokens < 1:
            granted, wait = self.pool.limiter.take(self.server, RATE_CHUNK)
            self.tokens += granted
            if not granted:
                time.sleep(min(wait, 1.0))
        self.tokens -= 1

    def close(self) -> None:
        """QUIT and give the slot back."""
        self.client.close()
        self.pool.slots.release(self.server, self.holder)

    def renew(self) -> None:
        """Keep the slot while the connection is still in use."""
        self.pool.slots.renew(self.server, self.holder)


@dataclass
class Transport:
    """The configured servers and the shared state that governs them."""

    servers: Sequence[SmtpServer]
    client: redis.Redis
    lease: float
    timeout: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.client)
        self.breaker = Breaker(self.client)
        self.slots = Slots(self.client, self.lease)
        self.outages = Outages(self.client)

    def open(self, avoid: SmtpServer | None = None) -> Connection:
        """A connection to the best available server (NoServer when none can be had)."""
        others = [s for s in self.servers if s != avoid]
        order = weighted_order(others, self.rng) + ([avoid] if avoid in self.servers else [])
        for server in order:
            if self.breaker.is_open(server):
                continue
            holder = self.slots.acquire(server)
            if holder is None:
                continue
            client = SmtpClient(
                server.host,
                server.port,
                tls=server.tls,
                username=server.username,
                password=server.password,
                timeout=self.timeout,
            )
            try:
                client.connect()
            except SmtpConnectionError as exc:
                self.breaker.failure(server)
                self.outages.down(server, str(exc))
                self.slots.release(server, holder)
                continue
            self.breaker.success(server)
            self.outages.up(server)
            return Connection(server, client, holder, self)
        raise NoServer(retry_in=min(5.0, BREAKER_COOLDOWN))
