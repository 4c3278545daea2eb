"""Tasks for petitions: the mail that confirms a signature."""

from __future__ import annotations

from clarion.actions import petition_notices
from clarion.bounces.refusals import BatchRefusals
from clarion.db import session_scope
from clarion.delivery.mailer import RETRYABLE
from clarion.models import Signature
from tasks import app
from tasks.retrying import queue_or_leave_to_sweep, retry_owed_mail


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
    # Outside the except: see tasks.retrying.
    retry_owed_mail(self, failure, Signature, signature_id)


def queue_signature_confirmation(signature_id: int) -> None:
    """Queue a signature's confirmation mail after the commit (the mail sweep if it cannot)."""
    queue_or_leave_to_sweep(send_signature_confirmation, signature_id)
