"""Thin feed tasks: find the feeds due for a poll, and poll one."""

from __future__ import annotations

from clarion.feeds import poll as feedpoll
from tasks import app


@app.task(acks_late=True)
def poll_due() -> list[int]:
    """Periodic: claim the feeds due for a poll and hand each to a worker."""
    claimed = feedpoll.claim_due()
    for feed_id in claimed:
        poll.delay(feed_id)
    return claimed


@app.task(acks_late=True)
def poll(feed_id: int) -> dict:
    """Fetch one claimed feed; new entries become alerts, failures are recorded on the feed."""
    outcome = feedpoll.poll(feed_id)
    return {"status": outcome.status, "alerts": outcome.new_alerts, "error": outcome.error}
