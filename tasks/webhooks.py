"""Thin webhook tasks: deliver an endpoint's due events in batches, make one delivery attempt
(resends), and sweep up the deliveries due."""

from __future__ import annotations

from clarion.integrations import webhooks
from tasks import app


@app.task(acks_late=True)
def deliver(delivery_id: int) -> str:
    """One attempt at one event for one endpoint; the next is scheduled by the domain."""
    return webhooks.deliver(delivery_id)


@app.task(acks_late=True)
def deliver_endpoint(endpoint_id: int) -> dict[str, int]:
    """The endpoint's due deliveries, a batch at a time over one connection; re-queues itself
    when its time is up and some are still due."""
    return webhooks.deliver_endpoint(endpoint_id)


@app.task(acks_late=True)
def sweep() -> int:
    """Periodic: wake the endpoints with deliveries due that no worker is making."""
    return len(webhooks.sweep())
