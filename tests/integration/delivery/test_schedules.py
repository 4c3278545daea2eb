"""Schedules live in the database and beat only polls: however many pollers, each due alert is
claimed once, and a beat killed and restarted sends nothing twice and forgets nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from clarion.db import session_scope, utcnow
from clarion.delivery import sending
from clarion.feeds import feeds
from clarion.models import Alert, AlertStatus, AuditEvent, Delivery, Feed
from tests.conftest import ROOT
from tests.feedserver import FeedServer, Route, item, rss
from tests.helpers import refresh
from tests.sendkit import make_alert, make_audience, make_list


def racers(backend, which: str, count: int, extra_env: dict[str, str] | None = None) -> list:
    """Start `count` processes running the same poll, release them together, collect results."""
    env = {**os.environ, **backend.env, **(extra_env or {}), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.racer", which],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:  # released together: the polls overlap
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def due_alerts(session, count: int) -> list[int]:
    alerts = make_list(session)
    make_audience(session, alerts, 3)
    past = utcnow() - timedelta(minutes=1)
    return [
        make_alert(
            session,
            [alerts],
            subject=f"Alert {n}",
            status=AlertStatus.SCHEDULED,
            scheduled_at=past,
        ).id
        for n in range(count)
    ]


def test_pollers_racing_in_several_processes_start_each_due_alert_once(session, backend):
    ids = due_alerts(session, 24)
    results = racers(backend, "start_due", 4)
    claims = Counter(alert_id for r in results for alert_id in r["claimed"])
    assert set(claims) == set(ids) and set(claims.values()) == {1}
    dispatches = Counter(
        task[1] for r in results for task in r["published"] if task[0].endswith(".dispatch")
    )
    assert dispatches == Counter({alert_id: 1 for alert_id in ids})
    refresh(session)
    starts = Counter(
        session.scalars(select(AuditEvent.target).where(AuditEvent.action == "alert.send"))
    )
    assert starts == Counter({f"alert:{alert_id}": 1 for alert_id in ids})
    statuses = set(session.scalars(select(Alert.status).where(Alert.id.in_(ids))))
    assert statuses == {AlertStatus.SENDING}


def test_pollers_racing_fetch_a_feed_once(session, backend, make_editor):
    with FeedServer() as blog:
        blog.routes["/feed.xml"] = Route(rss(item("p1", "One")))
        feed = feeds.create_feed(session, make_editor()[0], {"url": blog.url("/feed.xml")})
        session.commit()
        results = racers(backend, "feeds", 4, {"CLARION_ALLOW_PRIVATE_FETCH": "127.0.0.1/32"})
    assert sorted(feed_id for r in results for feed_id in r["claimed"]) == [feed.id]
    assert len(blog.hits("/feed.xml")) == 1
    refresh(session)
    assert session.get(Feed, feed.id).primed_at is not None


# --- Real beats ---------------------------------------------------------------------------


class Beat:
    """A `celery beat` process with its own schedule file and log."""

    def __init__(self, backend, workdir: Path, name: str, sweep: str = "0.3") -> None:
        self.log = workdir / f"{name}.log"
        env = {**os.environ, **backend.env, "CLARION_SWEEP_SECONDS": sweep}
        env["PYTHONPATH"] = str(ROOT)
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tasks", "beat",
                 "-s", str(workdir / f"{name}.schedule"), "--loglevel", "INFO"],
                cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def ticks(self) -> int:
        """How many times it has sent the due-alerts poll."""
        return self.log.read_text().count("Sending due task start-due-alerts")

    def wait_ticks(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.ticks() < count:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "beat does not tick"
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(30)


@pytest.fixture
def beats(backend, tmp_path):
    """Start beats with `beats(name)`; every one is stopped at the end of the test."""
    started: list[Beat] = []

    def start(name: str) -> Beat:
        beat = Beat(backend, tmp_path, name)
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.kill()


def wait_until(check, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def statuses(session, ids: list[int]) -> set[AlertStatus]:
    refresh(session)
    return set(session.scalars(select(Alert.status).where(Alert.id.in_(ids))))


def copies(smtp_sink) -> Counter:
    """(subject, recipient) -> how many messages the sink received."""
    return Counter((m.subject, to) for m in smtp_sink.messages() for to in m.envelope_to)


def test_a_beat_killed_and_restarted_while_sends_are_due_sends_each_once(
    session, settings, worker, smtp_sink, beats
):
    alerts = make_list(session)
    readers = make_audience(session, alerts, 12)
    past = utcnow() - timedelta(minutes=1)
    due = make_alert(
        session, [alerts], subject="Due", status=AlertStatus.SCHEDULED, scheduled_at=past
    )
    # Claimed by a beat whose worker died between the commit and enqueueing the dispatch.
    orphan = make_alert(session, [alerts], subject="Orphan")
    sending.start(session, orphan)
    session.commit()
    later = make_alert(
        session, [alerts], subject="Later", status=AlertStatus.SCHEDULED,
        scheduled_at=utcnow() + timedelta(days=1),
    )  # fmt: skip

    first = beats("beat")
    wait_until(lambda: statuses(session, [due.id]) != {AlertStatus.SCHEDULED})
    first.kill()
    # While no beat runs, another alert falls due.
    with session_scope() as writer:  # the worker is writing too: take the lock up front
        writer.execute(update(Alert).where(Alert.id == later.id).values(scheduled_at=past))
    again = beats("beat")  # the same schedule file: the same beat, restarted
    ids = [due.id, orphan.id, later.id]
    wait_until(lambda: statuses(session, ids) == {AlertStatus.SENT})
    again.wait_ticks(again.ticks() + 5)  # and a few more polls, to catch any second start
    again.kill()

    got = copies(smtp_sink)
    for subject in ("Due", "Orphan", "Later"):
        assert [got[(subject, f"r{n}@example.org")] for n in range(12)] == [1] * 12
    assert sum(got.values()) == 36
    for alert_id in ids:
        rows = select(func.count()).where(Delivery.alert_id == alert_id)
        assert session.scalar(rows) == len(readers)
    starts = Counter(
        session.scalars(select(AuditEvent.target).where(AuditEvent.action == "alert.send"))
    )
    assert starts == Counter({f"alert:{i}": 1 for i in ids})


def test_two_beats_at_once_send_each_due_alert_once(session, settings, worker, smtp_sink, beats):
    alerts = make_list(session)
    make_audience(session, alerts, 5)
    past = utcnow() - timedelta(seconds=1)
    one, two = beats("one"), beats("two")
    one.wait_ticks(1)
    two.wait_ticks(1)
    ids = [
        make_alert(
            session, [alerts], subject=f"Alert {n}", status=AlertStatus.SCHEDULED,
            scheduled_at=past,
        ).id
        for n in range(8)
    ]  # fmt: skip
    wait_until(lambda: statuses(session, ids) == {AlertStatus.SENT})
    one.wait_ticks(one.ticks() + 3)
    two.wait_ticks(two.ticks() + 3)

    got = copies(smtp_sink)
    assert set(got.values()) == {1} and len(got) == 8 * 5
    starts = Counter(
        session.scalars(select(AuditEvent.target).where(AuditEvent.action == "alert.send"))
    )
    assert starts == Counter({f"alert:{i}": 1 for i in ids})
