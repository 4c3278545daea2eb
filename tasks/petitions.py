"""Tasks for petitions: the mail that confirms a signature."""

from __future__ import annotations

from clarion.actions import petition_notices
from clarion.bounces.refusals import BatchRefusals
from clarion.db import session_scope, utcnow
from clarion.delivery import owed
from clarion.delivery.mailer import RETRYABLE
from clarion.models import Signature
from tasks import app
from tasks.retrying import next_wait, queue_or_leave_to_sweep, retry_later


@app.task(bind=True, max_retries=8, acks_late=True)
def send_signature_confirmation(self, signature_id: int) -> None:
    """Ask a signer to confirm their address; retried on SMTP trouble, a refusal of the
    address goes to the bounce policy."""
    try:
        with session_scope() as session:
            petition_notices.send_signature_confirmation(session, signature_id, BatchRefusals())
            return
    except RETRYABLE as exc:
        failure = exc
    with session_scope() as session:  # the mail sweep waits for this task's next try
        owed.deferred(session, Signature, signature_id, next_wait(self, 30), utcnow())
    retry_later(self, failure, 30)  # outside the except: see tasks.retrying


def queue_signature_confirmation(signature_id: int) -> None:
    """Queue a signature's confirmation mail after the commit (the mail sweep if it cannot)."""
    queue_or_leave_to_sweep(send_signature_confirmation, signature_id)
