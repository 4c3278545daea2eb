"""A transactional mail the server defers is tried again later, and the worker's log of it holds
no reader's address: greylisting replies quote the recipient, and Celery logs why a task will
run again."""

from __future__ import annotations

import time

from sqlalchemy import select

from clarion.models import ConsentRecord
from tests.faultsmtp import FaultServer, Plan
from tests.helpers import refresh

GREYLISTED = "450 4.2.0 <grey@example.org>: Recipient address rejected: Greylisted, try later"


def _wait_for_text(path, after: int, needle: bytes, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = path.read_bytes()[after:]
        if needle in logged:
            return logged
        time.sleep(0.1)
    return path.read_bytes()[after:]


def test_a_greylisted_confirmation_is_retried_and_its_log_names_no_one(
    client, session, lists, backend, tmp_path
):
    from tests.conftest import start_worker

    with FaultServer(Plan(refuse={"grey@example.org": GREYLISTED})) as server:
        log = tmp_path / "worker.log"
        worker = start_worker(backend, log, extra_env={"CLARION_SMTP_URL": server.url})
        try:
            client.post(
                "/subscribe",
                data={"email": "grey@example.org", "lists": [str(lists["alerts"].id)]},
            )
            logged = _wait_for_text(log, 0, b"retry: Retry in")
        finally:
            worker.stop()
        assert server.handler.refused["450"] >= 1
    assert b"send_confirmation" in logged and b"retry: Retry in" in logged
    assert b"Greylisted" in logged  # the reason is kept, for the operator
    assert b"grey@example.org" not in logged
    refresh(session)
    [consent] = session.scalars(select(ConsentRecord))
    assert consent.confirmed_at is None
