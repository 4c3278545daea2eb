"""Thin tasks of the inbound paths: process a stored message, sweep, poll the IMAP mailbox."""

from __future__ import annotations

from clarion.bounces import imap, inbound
from clarion.config import get_settings
from tasks import app
from tasks.retrying import retry_later


@app.task(bind=True, acks_late=True, max_retries=inbound.MAX_ATTEMPTS - 1)
def process_inbound(self, inbound_id: int) -> None:
    """Classify one stored message and act on it; retried with a growing delay on failure."""
    try:
        # What it did names readers' addresses: it is kept on the message (the admin shows
        # it, retention drops it), not returned, since the worker logs what a task returns.
        inbound.process(inbound_id)
        return
    except Exception as exc:
        failure = exc
    retry_later(self, failure, 60)  # outside the except: see tasks.retrying


@app.task(acks_late=True)
def sweep_inbound() -> list[int]:
    """Periodic: queue again the stored messages still unprocessed."""
    return inbound.sweep()


@app.task(acks_late=True)
def poll_imap() -> dict[str, list[int]] | None:
    """Periodic, when CLARION_BOUNCE_IMAP_URL is set: fetch and process the bounce mailbox."""
    mailbox = get_settings().bounces.imap
    if mailbox is None:
        return None
    result = imap.poll_once(mailbox)
    return None if result is None else vars(result)
