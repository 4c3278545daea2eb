"""A stalled send says why: no worker alive, SMTP unreachable since when, Redis unreachable."""

from __future__ import annotations

import time

import pytest

from clarion import jobqueue
from clarion.config import get_settings, reset_settings
from clarion.delivery import health, sending
from clarion.delivery.transport import NoServer, Transport
from clarion.redisconn import get_redis, reset_redis
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list
from tests.services import free_port


@pytest.fixture
def started(session, settings):
    """An alert that is sending, with its ledger not yet written (nothing will move)."""
    previous = jobqueue.set_backend(InlineQueue())
    alerts = make_list(session)
    make_audience(session, alerts, 3)
    alert = make_alert(session, [alerts])
    sending.start(session, alert)
    session.commit()
    yield alert
    jobqueue.set_backend(previous)


def reasons(session, alert_id: int) -> list[str]:
    return sending.progress(session, alert_id).stalled


def test_no_worker_alive_is_named_and_a_heartbeat_clears_it(session, started):
    # The test run's own Celery workers (paused, but alive) announce themselves every few
    # seconds: forget them, so that only the announcements below count.
    get_redis().delete(health.WORKERS_KEY)
    assert any("no worker is running" in r for r in reasons(session, started.id))
    health.worker_heartbeat("w1@test", ["default", "bulk"])
    assert reasons(session, started.id) == []
    assert health.workers_alive("bulk") == ["w1@test"]
    assert health.workers_alive("imports") == []
    # A worker that stopped announcing itself counts as gone once its announcement runs out.
    get_redis().zadd(health.WORKERS_KEY, {"w1@test|bulk,default": time.time() - 1})
    assert any("no worker is running" in r for r in reasons(session, started.id))


def test_an_unreachable_smtp_server_is_named_with_the_time_it_was_lost(
    session, started, monkeypatch
):
    health.worker_heartbeat("w1@test", ["bulk"])
    port = free_port()  # nobody listens here
    monkeypatch.setenv("CLARION_SMTP_URL", f"smtp://127.0.0.1:{port}")
    reset_settings()
    transport = Transport(get_settings().smtp_servers, get_redis(), lease=10, timeout=2)
    with pytest.raises(NoServer):
        transport.open()
    [reason] = reasons(session, started.id)
    assert reason.startswith(f"SMTP server 127.0.0.1:{port} unreachable since 20")
    assert "UTC" in reason and "refused" in reason.lower()
    line = sending.progress(session, started.id).line()
    assert "stalled: SMTP server" in line


def test_redis_unreachable_is_named(session, started, monkeypatch):
    monkeypatch.setenv("CLARION_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    reset_redis()
    try:
        [reason] = reasons(session, started.id)
    finally:
        monkeypatch.undo()
        reset_settings()
        reset_redis()
    assert reason.startswith("Redis is unreachable")


def test_possible_duplicates_show_in_the_progress_line_and_json(session, started):
    started.possible_duplicates = 2
    session.commit()
    progress = sending.progress(session, started.id)
    assert progress.as_dict()["possible_duplicates"] == 2
    assert "possible duplicates 2" in progress.line()


def test_a_running_worker_announces_itself(worker, settings):
    deadline = time.monotonic() + 3 * health.HEARTBEAT_SECONDS
    while not health.workers_alive("bulk") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health.workers_alive("bulk")
