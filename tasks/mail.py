"""Tasks that send transactional mail: confirmations."""

from __future__ import annotations

import smtplib

from clarion.audience import notices
from clarion.db import session_scope
from tasks import app

RETRYABLE = (smtplib.SMTPException, OSError)


@app.task(bind=True, max_retries=8, acks_late=True)
def send_confirmation(self, consent_id: int) -> None:
    """Send the double opt-in mail for one consent record; retried on SMTP trouble."""
    try:
        with session_scope() as session:
            notices.send_confirmation(session, consent_id)
    except RETRYABLE as exc:
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 3600)) from exc
