"""The lean SMTP client against a real server, and the shared limits kept in a real Redis."""

from __future__ import annotations

import random

import pytest
import redis

from clarion.config import SmtpServer
from clarion.delivery.smtpclient import SmtpClient, SmtpConnectionError, StreamBroken
from clarion.delivery.transport import (
    BREAKER_THRESHOLD,
    Breaker,
    NoServer,
    RateLimiter,
    Slots,
    Transport,
)
from tests.faultsmtp import FaultServer, Plan
from tests.services import free_port

MESSAGE = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"


@pytest.fixture
def client(redis_server):
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


@pytest.mark.parametrize("pipelining", [True, False])
def test_the_client_sends_refuses_and_carries_on_on_one_connection(pipelining):
    plan = Plan(refuse={"no@example.org": "550 5.1.1 no such user"})
    with FaultServer(plan, keep=True, pipelining=pipelining) as server:
        smtp = SmtpClient("127.0.0.1", server.port, timeout=5)
        smtp.connect()
        assert ("PIPELINING" in smtp.extensions) is pipelining
        first = smtp.send("b+t1@b.example.org", "a@example.org", MESSAGE)
        refused = smtp.send("b+t2@b.example.org", "no@example.org", MESSAGE)
        after = smtp.send("b+t3@b.example.org", "c@example.org", MESSAGE)
        smtp.close()
    assert (first.stage, first.reply.code) == ("end", 250)
    assert (refused.stage, refused.reply.code, refused.reply.status) == ("rcpt", 550, "5.1.1")
    assert (after.stage, after.reply.code) == ("end", 250)
    assert [m[1] for m in server.handler.messages] == ["a@example.org", "c@example.org"]
    # Dot-stuffing: the server got the body exactly as given.
    assert server.handler.messages[0][2].endswith(b".leading dot\r\nbody\r\n")


def test_a_421_closes_the_connection_and_a_dead_server_is_a_connection_error():
    with FaultServer(Plan(transient_share=1.0, seed=2)) as server:
        smtp = SmtpClient("127.0.0.1", server.port, timeout=5)
        smtp.connect()
        outcomes = []
        while smtp.connected:
            outcomes.append(smtp.send("b+t@b.example.org", "a@example.org", MESSAGE))
    assert outcomes[-1].reply.code == 421 and all(o.reply.code in (421, 451) for o in outcomes)
    with pytest.raises(SmtpConnectionError):
        SmtpClient("127.0.0.1", free_port(), timeout=2).connect()


def server(port: int, rate: float = 0, max_connections: int = 2, weight: int = 1) -> SmtpServer:
    return SmtpServer("127.0.0.1", port, rate=rate, max_connections=max_connections, weight=weight)


def test_the_rate_is_shared_by_every_taker_and_never_exceeded(client):
    now = [1000.0]
    limiter = RateLimiter(client, clock=lambda: now[0])
    other = RateLimiter(client, clock=lambda: now[0])  # another worker, same Redis
    srv = server(free_port(), rate=50)
    granted = 0
    for step in range(200):  # 10 simulated seconds in 50 ms steps
        for taker in (limiter, other):
            got, wait = taker.take(srv, 20)
            granted += got
            assert got or wait > 0
        now[0] += 0.05
    assert 50 * 10 - 20 <= granted <= 50 * 10 + 10  # rate * time + one burst
    assert limiter.take(server(free_port()), 1000) == (1000, 0.0)  # rate 0: unlimited


def test_the_breaker_opens_after_repeated_failures_and_success_resets_it(client):
    breaker, srv = Breaker(client), server(free_port())
    for _ in range(BREAKER_THRESHOLD - 1):
        breaker.failure(srv)
    breaker.success(srv)
    breaker.failure(srv)
    assert not breaker.is_open(srv)
    for _ in range(BREAKER_THRESHOLD):
        breaker.failure(srv)
    assert breaker.is_open(srv)


def test_connection_slots_are_limited_and_expire_with_their_lease(client):
    now = [0.0]
    slots, srv = Slots(client, lease=10, clock=lambda: now[0]), server(free_port())
    a, b = slots.acquire(srv), slots.acquire(srv)
    assert a and b and slots.acquire(srv) is None
    slots.release(srv, a)
    assert slots.acquire(srv) is not None
    now[0] = 11.0  # a crashed holder's slot comes back after its lease
    assert slots.acquire(srv) is not None


def test_the_transport_prefers_heavier_servers_and_skips_dead_ones(client):
    with FaultServer() as light, FaultServer() as heavy:
        servers = [
            server(light.port, weight=1, max_connections=50),
            server(heavy.port, weight=4, max_connections=50),
        ]
        transport = Transport(servers, client, lease=30, rng=random.Random(3))
        picks = []
        for _ in range(40):
            conn = transport.open()
            picks.append(conn.server.port)
            conn.close()
        assert picks.count(heavy.port) > 2 * picks.count(light.port) > 0
        dead = server(free_port())
        transport = Transport([dead, servers[0]], client, lease=30)
        assert transport.open().server.port == light.port
    with pytest.raises(NoServer):
        Transport([dead], client, lease=30).open()


class FakeJob:
    def __init__(self, rcpt: str):
        self.envelope_from, self.rcpt, self.smtputf8 = "b+t@b.example.org", rcpt, False
        self.eight_bit = False
        self.built = False

    def data(self) -> bytes:
        self.built = True
        return MESSAGE


def test_a_stream_overlaps_messages_and_says_what_was_in_flight_when_it_broke():
    plan = Plan(refuse={"no@example.org": "550 5.1.1 no such user"})
    with FaultServer(plan, keep=True) as server:
        smtp = SmtpClient("127.0.0.1", server.port, timeout=5)
        smtp.connect()
        jobs = [FakeJob(r) for r in ("a@example.org", "no@example.org", "c@example.org")]
        outcomes = [(job.rcpt, o.stage, o.reply.code) for job, o in smtp.stream(iter(jobs))]
        assert outcomes == [
            ("a@example.org", "end", 250),
            ("no@example.org", "rcpt", 550),
            ("c@example.org", "end", 250),
        ]
        assert [m[1] for m in server.handler.messages] == ["a@example.org", "c@example.org"]

        # Stopping mid-stream drops the connection: the next message's DATA is never ended.
        stream = smtp.stream(iter([FakeJob("d@example.org"), FakeJob("e@example.org")]))
        job, outcome = next(stream)
        stream.close()
        assert job.rcpt == "d@example.org" and not smtp.connected
    assert server.handler.counts["e@example.org"] == 0

    with FaultServer(Plan(transient_share=1.0, seed=2)) as server:
        smtp = SmtpClient("127.0.0.1", server.port, timeout=5)
        smtp.connect()
        jobs = [FakeJob(f"r{i}@example.org") for i in range(50)]
        seen = []
        with pytest.raises(StreamBroken) as broken:
            for job, outcome in smtp.stream(iter(jobs)):
                seen.append(outcome.reply.code)
        assert seen[-1] == 421 and set(seen) <= {421, 451}
        assert broken.value.in_doubt == [] and len(broken.value.unsent) == 1
