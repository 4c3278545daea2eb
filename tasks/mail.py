"""Tasks that send transactional mail: confirmations, a reader's data link."""

from __future__ import annotations

from clarion.audience import disclosure, notices
from clarion.bounces.refusals import BatchRefusals
from clarion.db import session_scope
from clarion.delivery.mailer import RETRYABLE
from tasks import app
from tasks.retrying import retry_later


@app.task(bind=True, max_retries=8, acks_late=True)
def send_confirmation(self, consent_id: int) -> None:
    """Send the double opt-in mail for one consent record; retried on SMTP trouble, a refusal
    of the address goes to the bounce policy."""
    try:
        with session_scope() as session:
            notices.send_confirmation(session, consent_id, BatchRefusals())
            return
    except RETRYABLE as exc:
        failure = exc
    retry_later(self, failure, 30)  # outside the except: see tasks.retrying


@app.task(bind=True, max_retries=8, acks_late=True)
def send_data_link(self, subscriber_id: int) -> None:
    """Mail a reader the link to download their data; retried on SMTP trouble."""
    try:
        with session_scope() as session:
            disclosure.send_data_link(session, subscriber_id, BatchRefusals())
            return
    except RETRYABLE as exc:
        failure = exc
    retry_later(self, failure, 30)  # outside the except: see tasks.retrying
