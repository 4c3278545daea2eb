"""Housekeeping: forget what Clarion no longer needs to keep."""

from __future__ import annotations

from clarion import retention
from clarion.audience import repermission
from clarion.db import session_scope
from tasks import app


@app.task
def purge_expired() -> dict[str, int]:
    """Apply the retention policy: old sign-ups, evidence, IP addresses, per-reader clicks."""
    with session_scope() as session:
        return retention.run(session)


@app.task(acks_late=True)
def remove_unstayed() -> dict[int, int]:
    """Periodic: unsubscribe readers who let a "stay subscribed?" mail's deadline pass."""
    return repermission.remove_due()
