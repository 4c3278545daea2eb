"""Tasks that send transactional mail: confirmations, a reader's data link, and the sweep
that queues again a confirmation mail whose task was lost or gave up."""

from __future__ import annotations

from clarion.audience import disclosure, notices
from clarion.bounces.refusals import BatchRefusals
from clarion.db import session_scope, utcnow
from clarion.delivery import owed
from clarion.delivery.mailer import RETRYABLE
from clarion.models import ConsentRecord
from tasks import app
from tasks.petitions import send_signature_confirmation
from tasks.retrying import queue_or_leave_to_sweep, retry_later, retry_owed_mail


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
    # Outside the except: see tasks.retrying.
    retry_owed_mail(self, failure, ConsentRecord, consent_id)


def queue_confirmation(consent_id: int) -> None:
    """Queue a sign-up's confirmation mail after the commit (the mail sweep if it cannot)."""
    queue_or_leave_to_sweep(send_confirmation, consent_id)


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


@app.task
def sweep_confirmations() -> int:
    """Queue again every confirmation mail (sign-ups and signatures) still owed past its due
    time (clarion.delivery.owed); how many were queued."""
    with session_scope() as session:
        now = utcnow()
        consents, signatures = owed.due_confirmations(session, now)
        if consents or signatures:
            owed.note_late(session, len(consents) + len(signatures), now)
    # Published after the commit of their lease: a lost publish is swept again when it ends.
    for consent_id in consents:
        send_confirmation.delay(consent_id)
    for signature_id in signatures:
        send_signature_confirmation.delay(signature_id)
    return len(consents) + len(signatures)
