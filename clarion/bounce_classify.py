"""Interim RFC 3463 classification of one SMTP refusal (the bounce engine's module replaces it).

Only `classify_status` with the signature of the bounce engine's module lives here, so that the
delivery engine runs before that module lands on main; on merge, main's version wins whole.
"""

from __future__ import annotations

from clarion.models.inbound import BounceClass

# Permanent codes that do not prove the address is dead (RFC 3463 subjects and details).
_SOFT_PERMANENT = ("5.2.2", "5.2.3", "5.3.4", "5.4.", "5.5.")


def classify_status(
    status: str, diagnostic: str = "", smtp_code: str = ""
) -> tuple[BounceClass, str]:
    """Class and a short reason for one failure, from its enhanced status and reply code."""
    code = (smtp_code or "").strip()[:3]
    if status.startswith("2"):
        return BounceClass.NOT_A_BOUNCE, "delivered"
    if status.startswith("4") or (not status and code.startswith("4")):
        return BounceClass.SOFT, f"temporary failure {status or code}"
    if status.startswith("5.7."):
        return BounceClass.SENDER_FAULT, f"refused by policy {status}"
    if status.startswith(_SOFT_PERMANENT) or not status:
        return BounceClass.SOFT, f"permanent failure {status or code}, address not proven dead"
    return BounceClass.HARD, f"permanent failure {status}"
