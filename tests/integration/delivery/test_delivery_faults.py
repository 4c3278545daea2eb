"""Fault tests: real Celery workers and beat, a private Redis, a counting SMTP server on loopback.

Every test sends a real alert through `celery worker` processes and breaks something on the way:
a worker (its main process, one pool child, or both) killed with SIGKILL, an SMTP server failing
30% of transactions or refusing with 5.7.1, Redis restarted with or without its data, PostgreSQL
restarted, a reader unsubscribing mid-send. The sink counts the copies each reader got.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clarion import jobqueue, schema
from clarion.audience import subscribers
from clarion.bounces.numbers import BouncePolicy
from clarion.config import get_settings, reset_settings
from clarion.db import dispose_engines, session_scope
from clarion.delivery import dispatch, sending
from clarion.models import Alert, AlertStatus, Delivery, DeliveryStatus, Subscriber
from tests.conftest import ROOT, Backend, Worker, start_worker
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh
from tests.sendkit import make_alert, make_audience, make_list
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

LEASE = 6  # seconds before a claim counts as abandoned: short, so that tests are short


@dataclass
class Rig:
    """The processes of one fault test and the environment they share."""

    backend: Backend
    env: dict[str, str]
    tmp: Path
    workers: list[Worker] = field(default_factory=list)
    beat: subprocess.Popen | None = None

    def worker(self, concurrency: int = 2) -> Worker:
        log = self.tmp / f"worker{len(self.workers)}.log"
        w = start_worker(
            self.backend, log, queues="bulk", concurrency=concurrency, extra_env=self.env
        )
        self.workers.append(w)
        return w

    def start_beat(self) -> None:
        log = self.tmp / "beat.log"
        self.beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.tmp / "beat-schedule"),
            ],
            cwd=ROOT,
            env={**os.environ, **self.backend.env, **self.env, "PYTHONPATH": str(ROOT)},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs(self) -> str:
        return "\n".join(p.read_text()[-4000:] for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        if self.beat is not None and self.beat.poll() is None:
            self.beat.terminate()
            try:
                self.beat.wait(15)
            except subprocess.TimeoutExpired:
                self.beat.kill()
                self.beat.wait(15)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def rig(settings, backend, private_redis, tmp_path, monkeypatch) -> Iterator[Callable[..., Rig]]:
    """Configure this process and the workers for one fault server; publish to private Redis."""
    import tasks

    made: list[Rig] = []
    previous = None

    def build(server: FaultServer, **extra: str) -> Rig:
        nonlocal previous
        env = {
            "CLARION_REDIS_URL": private_redis.url,
            "CLARION_SMTP_URL": server.url,
            "CLARION_SEND_LEASE_SECONDS": str(LEASE),
            "CLARION_RETRY_BASE_SECONDS": "0.2",
            "CLARION_RETRY_MAX_SECONDS": "1",
            "CLARION_SWEEP_SECONDS": "1",
            **extra,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        previous = jobqueue.set_backend(tasks.publisher(tasks.make_celery(get_settings())))
        made.append(Rig(backend, env, tmp_path))
        return made[-1]

    yield build
    try:
        for r in made:
            r.stop()
    finally:  # whatever happened, the next test publishes to the shared Redis again
        if made:
            jobqueue.set_backend(previous)


def start_send(session, alert: Alert) -> None:
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)


def wait_for(predicate: Callable[[], bool], timeout: float, rig: Rig, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{rig.logs()}")
        time.sleep(0.2)


def alert_status(session, alert_id: int) -> AlertStatus:
    refresh(session)
    return session.get(Alert, alert_id).status


def row_counts(session, alert_id: int) -> dict[str, int]:
    refresh(session)
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.status)
    )
    return {DeliveryStatus(s).value: n for s, n in rows}


def pool_children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a Celery worker's pool)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def kill(victim: Worker, target: str) -> int:
    """SIGKILL part of a worker; returns how many SMTP connections the killed processes had."""
    concurrency = 2  # Rig.worker's default: one batch, so one connection, per pool child
    if target == "whole worker":
        victim.kill()
        return concurrency
    if target == "main process":
        # Its pool children are orphaned mid-batch: count their connections too.
        os.kill(victim.proc.pid, signal.SIGKILL)
        return concurrency
    child = pool_children(victim.proc.pid)[0]
    os.kill(child, signal.SIGKILL)
    return 1


@pytest.mark.parametrize("target", ["whole worker", "main process", "pool child"])
def test_a_killed_worker_loses_no_one_and_duplicates_at_most_two_per_connection(
    session, rig, target
):
    """The bound used to be every row recorded neither every 250 messages nor every second."""
    total = 3000
    alerts = make_list(session)
    make_audience(session, alerts, total)
    with FaultServer() as server:
        r = rig(server)
        victim = r.worker()
        r.start_beat()
        alert = make_alert(session, [alerts])
        start_send(session, alert)
        wait_for(lambda: server.handler.accepted >= 1000, 120, r, "1000 messages")
        connections = kill(victim, target)
        r.worker()
        wait_for(lambda: alert_status(session, alert.id) == AlertStatus.SENT, 240, r, "SENT")
    counts = server.handler.counts
    assert len(counts) == total, r.logs()
    duplicates = server.handler.duplicates()
    assert duplicates <= 2 * connections, r.logs()
    assert row_counts(session, alert.id) == {"sent": total}
    # Every reader who may have two copies is counted as such, and shown (never fewer).
    assert session.get(Alert, alert.id).possible_duplicates >= duplicates


def test_temporary_refusals_of_30_percent_all_end_delivered_none_failed(session, rig):
    alerts = make_list(session)
    make_audience(session, alerts, 2000)
    with FaultServer(Plan(transient_share=0.3)) as server:
        r = rig(server)
        r.worker()
        r.start_beat()
        alert = make_alert(session, [alerts])
        start_send(session, alert)
        wait_for(lambda: alert_status(session, alert.id) == AlertStatus.SENT, 180, r, "SENT")
    handler = server.handler
    assert handler.refused["421"] + handler.refused["451"] > 500
    assert len(handler.counts) == 2000 and handler.duplicates() == 0
    assert row_counts(session, alert.id) == {"sent": 2000}


@pytest.mark.parametrize("persistence", ["none", "aof"])
def test_redis_restarted_mid_send_nothing_is_lost_and_nobody_gets_two(
    session, rig, private_redis, persistence
):
    """It used to send whole batches twice: the slot release failed before outcomes were written."""
    private_redis.appendonly = persistence == "aof"
    private_redis.restart()
    alerts = make_list(session)
    make_audience(session, alerts, 4000)
    with FaultServer() as server:
        r = rig(server)
        r.worker()
        r.start_beat()
        alert = make_alert(session, [alerts])
        start_send(session, alert)
        wait_for(lambda: server.handler.accepted >= 800, 120, r, "800 messages")
        # Without persistence the queue, the epoch and every counter are gone.
        private_redis.restart()
        wait_for(lambda: alert_status(session, alert.id) == AlertStatus.SENT, 180, r, "SENT")
    assert len(server.handler.counts) == 4000
    assert server.handler.duplicates() == 0, r.logs()
    assert row_counts(session, alert.id) == {"sent": 4000}


@pytest.fixture
def private_pg(backend) -> Iterator[PostgresServer]:
    if backend.name != "postgresql":
        pytest.skip("a database restart is a PostgreSQL matter (SQLite is a file in-process)")
    server = PostgresServer().start()
    yield server
    dispose_engines()
    server.cleanup()


def test_postgresql_restarted_mid_send_nothing_is_lost_and_nobody_gets_two(rig, private_pg):
    url = private_pg.create_database("clarion_restart")
    schema.upgrade(url)
    total = 4000
    with FaultServer() as server:
        r = rig(server, CLARION_DATABASE_URL=url)
        with session_scope() as s:
            alerts = make_list(s)
            make_audience(s, alerts, total)
            alert = make_alert(s, [alerts])
            start_send(s, alert)
            alert_id = alert.id
        r.worker()
        r.start_beat()
        wait_for(lambda: server.handler.accepted >= 800, 120, r, "800 messages")
        private_pg.restart()  # every connection of every process is dropped
        dispose_engines()

        def sent() -> bool:
            try:
                with session_scope() as s:
                    return s.get(Alert, alert_id).status == AlertStatus.SENT
            except Exception:
                return False

        wait_for(sent, 180, r, "SENT")
    assert len(server.handler.counts) == total
    assert server.handler.duplicates() == 0, r.logs()
    with session_scope() as s:
        assert row_counts(s, alert_id) == {"sent": total}


def test_a_reader_who_unsubscribes_during_the_send_gets_nothing_more(session, rig):
    alerts = make_list(session)
    ids = make_audience(session, alerts, 2000)
    leavers = ids[-100:]
    with FaultServer() as server:
        r = rig(server)
        r.worker()
        alert = make_alert(session, [alerts])
        start_send(session, alert)
        wait_for(lambda: server.handler.accepted >= 200, 120, r, "200 messages")
        # A writer session: workers write meanwhile, and SQLite refuses a reader's stale write.
        with session_scope() as writer:
            for subscriber_id in leavers:
                subscribers.unsubscribe(writer, writer.get(Subscriber, subscriber_id), None)
        wait_for(lambda: alert_status(session, alert.id) == AlertStatus.SENT, 120, r, "SENT")
    left = {f"r{i}@example.org" for i in range(1900, 2000)}
    assert not left & set(server.handler.counts)
    assert len(server.handler.counts) == 1900
    assert row_counts(session, alert.id) == {"sent": 1900, "skipped": 100}


def test_a_storm_of_5_7_1_refusals_pauses_the_alert_at_once(session, rig):
    alerts = make_list(session)
    make_audience(session, alerts, 3000)
    with FaultServer(Plan(policy_after=300)) as server:
        r = rig(server)
        r.worker()
        alert = make_alert(session, [alerts])
        start_send(session, alert)
        wait_for(lambda: alert_status(session, alert.id) == AlertStatus.PAUSED, 120, r, "PAUSED")
        time.sleep(1.5)  # let any batch still in flight reach its checkpoint
        refused = server.handler.refused["550"]
    # Each worker process stops at its own next refusal once the count is reached.
    assert refused <= BouncePolicy().sender_fault_limit + 2
    assert server.handler.accepted == 300
    refresh(session)
    assert "5.7.1" in session.get(Alert, alert.id).status_reason
    counts = row_counts(session, alert.id)
    assert "failed" not in counts and counts.get("sending", 0) == 0
