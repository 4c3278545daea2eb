"""The bounce policy as the delivery engine sees it: what a batch's refusals do to readers."""

from __future__ import annotations

from sqlalchemy.orm import Session

from clarion.bounces import policy
from clarion.bounces.numbers import BouncePolicy, load_policy
from clarion.delivery.refusals import Finding


class BatchRefusals:
    """`clarion.delivery.refusals.RefusalPolicy` for one batch: the numbers are read once, and
    only if something was refused."""

    def __init__(self) -> None:
        self._numbers: BouncePolicy | None = None

    def numbers(self, session: Session) -> BouncePolicy:
        """The owners' bounce policy numbers, read on first use."""
        if self._numbers is None:
            self._numbers = load_policy(session)
        return self._numbers

    def bounced(self, session: Session, finding: Finding) -> None:
        """Record the refusal and apply the policy to its reader; the caller commits."""
        policy.act(session, finding, self.numbers(session))

    def sender_fault(self, session: Session, alert_id: int, detail: str, immediate: bool) -> bool:
        """Tell the owners; True when the alert is now paused."""
        return policy.sender_fault(session, alert_id, detail, self.numbers(session), immediate)
