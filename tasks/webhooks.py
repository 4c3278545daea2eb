"""Thin webhook tasks: make one delivery attempt, and sweep up the deliveries due."""

from __future__ import annotations

from clarion.integrations import webhooks
from tasks import app


@app.task(acks_late=True)
def deliver(delivery_id: int) -> str:
    """One attempt at one event for one endpoint; the next is scheduled by the domain."""
    return webhooks.deliver(delivery_id)


@app.task(acks_late=True)
def sweep() -> int:
    """Periodic: publish the deliveries due that no worker is making."""
    return len(webhooks.sweep())
