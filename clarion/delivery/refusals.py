"""The port through which a batch hands refused recipients to the bounce policy.

The bounce policy sits above the delivery engine: it unsubscribes readers (audience) and pauses
alerts (`sending.pause`). So the engine cannot import it; a batch reports what it was refused
through `RefusalPolicy`, which `clarion.bounces.refusals.BatchRefusals` implements, and whoever
runs batches (tasks.delivery, or a test's inline queue) passes that in. `Finding` is the one
report every path hands the policy: the engine's refused recipients, and the DSNs, complaints
and provider events that arrive later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from clarion.models import BounceClass


@dataclass(frozen=True)
class Finding:
    """One classified report about one recipient, matched to what Clarion knows of them."""

    classification: BounceClass
    status: str
    reason: str
    email: str
    source: str  # delivery, smtp, imap, ses, mailgun, sendgrid, postmark
    subscriber_id: int | None = None
    delivery_id: int | None = None
    alert_id: int | None = None
    evidence: bytes | None = None


class RefusalPolicy(Protocol):
    """What the bounce policy does with what one batch was refused."""

    def bounced(self, session: Session, finding: Finding) -> None:
        """Record a recipient's final refusal and apply the policy to the reader."""

    def sender_fault(self, session: Session, alert_id: int, detail: str, immediate: bool) -> bool:
        """Our sending was refused; True when the alert is now paused and the batch must stop."""


# Makes one RefusalPolicy per batch (it may read the policy's numbers once and keep them).
RefusalPolicyFactory = Callable[[], RefusalPolicy]
