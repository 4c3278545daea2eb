"""Thin tasks of the delivery engine (queue `bulk`): they carry ids and call the engine."""

from __future__ import annotations

from clarion.bounces.refusals import BatchRefusals
from clarion.delivery import batches
from clarion.delivery import dispatch as engine
from tasks import app


@app.task(acks_late=True)
def dispatch(alert_id: int) -> int:
    """Write an alert's ledger and hand out its first batches."""
    return engine.dispatch(alert_id)


@app.task(acks_late=True)
def send_batch(alert_id: int, first_id: int, last_id: int) -> int:
    """Send the ledger rows first_id..last_id of an alert."""
    return engine.send_batch(alert_id, first_id, last_id, BatchRefusals)


@app.task(acks_late=True)
def refill(alert_id: int) -> int:
    """Hand out batches that have fallen due (a wake-up after a retry backoff)."""
    count = batches.refill(alert_id)
    engine.finish_if_done(alert_id)
    return count


@app.task(acks_late=True)
def reclaim_stale() -> dict[str, int]:
    """Periodic sweep: abandoned claims back to the queue, lost work handed out again."""
    return engine.reclaim_stale()


@app.task(acks_late=True)
def start_due() -> list[int]:
    """Periodic: start the scheduled alerts whose time has come."""
    return engine.start_due_alerts()
