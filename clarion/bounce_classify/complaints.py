"""Complaints: ARF feedback reports (RFC 5965, also forwarded), Hotmail JMRP, Apple opt-outs."""

from __future__ import annotations

from email.message import Message

from clarion.bounce_classify.mime import (
    Parts,
    addresses_in,
    decode_header_value,
    field_blocks,
    header_addresses,
    original_to,
)
from clarion.bounce_classify.report import (
    RECIPIENT_LIMIT,
    RecipientReport,
    dedupe,
    known_recipient,
)
from clarion.models.inbound import BounceClass


def complaint_reports(msg: Message, parts: Parts, body: str) -> list[RecipientReport] | None:
    """Recipients of an ARF report, a Hotmail JMRP or an Apple Mail unsubscribe, or None."""
    feedback = parts.feedback or parts.nested_feedback
    reports = [b for text in feedback for b in field_blocks(text) if "feedback-type" in b]
    if not reports:
        reports = [b for b in field_blocks(body) if "feedback-type" in b and "user-agent" in b]
    if reports:
        return _arf_recipients(reports, parts)
    subject = decode_header_value(msg.get("Subject")).lower()
    if parts.hotmail_recipients or subject.startswith("complaint about message from"):
        rcpts = parts.hotmail_recipients or original_to(parts)
        return [complaint_report(r, "abuse") for r in rcpts or [None]]
    if str(msg.get("X-Apple-Unsubscribe", "")).strip().lower() == "true":
        sender = header_addresses(msg, "From")
        return [complaint_report(sender[0] if sender else None, "opt-out")]
    return None


def _arf_recipients(reports: list[dict[str, str]], parts: Parts) -> list[RecipientReport]:
    found: list[RecipientReport] = []
    for report in reports:
        ftype = report.get("feedback-type", "abuse").split()[0].lower() or "abuse"
        listed = report.get("original-rcpt-to", "") + " " + report.get("removal-recipient", "")
        rcpts = addresses_in(listed) or original_to(parts)
        # Redacted reports name no one: None, and the VERP token or Message-ID finds the reader.
        found.extend(complaint_report(r, ftype) for r in rcpts or [None])
    return dedupe(found)[:RECIPIENT_LIMIT]


def complaint_report(recipient: str | None, feedback_type: str) -> RecipientReport:
    """The report of one complaint about one recipient."""
    return RecipientReport(
        recipient=known_recipient(recipient),
        classification=BounceClass.COMPLAINT,
        status="",
        reason=f"complaint: {feedback_type} [feedback]",
        diagnostic="",
        feedback_type=feedback_type,
    )
