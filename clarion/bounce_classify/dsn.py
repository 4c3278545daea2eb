"""RFC 3464 delivery status notifications: one verdict per recipient block."""

from __future__ import annotations

import re

from clarion.bounce_classify.mime import Parts, field_address, field_blocks
from clarion.bounce_classify.prose import chunk_for
from clarion.bounce_classify.report import RECIPIENT_LIMIT, RecipientReport, dedupe, trim
from clarion.bounce_classify.verdict import (
    describe,
    enhanced_status,
    matches_rule,
    plain_words,
    recipient_verdict,
)
from clarion.models.inbound import BounceClass

H, S = BounceClass.HARD, BounceClass.SOFT


def dsn_recipients(parts: Parts, body: str, notice: str) -> list[RecipientReport]:
    """Per-recipient reports from delivery-status parts, or from DSN fields in plain text."""
    statuses = parts.delivery_status or parts.nested_delivery_status
    blocks = [b for text in statuses for b in field_blocks(text)]
    blocks = [b for b in blocks if _is_recipient_block(b)]
    if not blocks:
        blocks = [b for b in field_blocks(body) if _is_recipient_block(b) and "action" in b]
    blocks = blocks[:RECIPIENT_LIMIT]
    rcpts = [_block_recipient(b) for b in blocks]
    reports = [_dsn_recipient(b, r, rcpts, notice) for b, r in zip(blocks, rcpts, strict=True)]
    if len(reports) == 1:
        reports = [_contradicted(reports[0], notice)]
    return dedupe(reports)


def _is_recipient_block(block: dict[str, str]) -> bool:
    return any(k in block for k in ("final-recipient", "original-recipient", "x-actual-recipient"))


def _block_recipient(block: dict[str, str]) -> str:
    """The address we sent to: Original-Recipient when it is an address, else Final-Recipient."""
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        candidate = field_address(block.get(name, ""))
        if "@" in candidate:
            return candidate
    return field_address(block.get("final-recipient", ""))


def _dsn_recipient(
    block: dict[str, str], recipient: str, rcpts: list[str], notice: str
) -> RecipientReport:
    context = chunk_for(recipient, rcpts, notice)
    action = block.get("action", "").lower().split()[0] if block.get("action") else ""
    diagnostic = _diagnostic_value(block.get("diagnostic-code", ""))
    if not diagnostic.strip() or _is_generic(diagnostic):
        diagnostic = (diagnostic + " " + context[:600]).strip()
    status = _dsn_status(block.get("status", ""), diagnostic)
    return _recipient_report(recipient, action, status, diagnostic, context)


# A relay that files the remote reply under its own category ("5.1.0 - Unknown address error
# 550-'<the remote reply>'", as Amazon SES does): the quoted reply is the evidence.
RELAYED_REPLY = re.compile(r"^\s*[245]\.\d+\.\d+ - [^'\"]{3,60}?[245]\d\d[ -]'(.+)'", re.DOTALL)


def _diagnostic_value(value: str) -> str:
    """The remote server's words in a Diagnostic-Code field, without type or relay wrapper."""
    value = re.sub(r"^\s*[\w-]+\s*;\s*", "", value)
    relayed = RELAYED_REPLY.match(value)
    return relayed.group(1) if relayed else value


def _is_generic(diagnostic: str) -> bool:
    """True when a diagnostic names no reason (a bare code), so the notice text may help."""
    words = re.sub(r"[\d.#()<>\[\]-]+", " ", diagnostic).split()
    return len(words) < 2


def _dsn_status(field_value: str, diagnostic: str) -> str:
    """The Status field, unless it is generic and the diagnostic names a precise code."""
    status = enhanced_status(field_value)
    inner = enhanced_status(diagnostic)
    if not status:
        return inner
    # "5.0.0" says nothing more than "failed"; a precise code of the same class says why.
    if inner and status.endswith(".0.0") and status[0] == inner[0]:
        return inner
    return status


def _recipient_report(
    recipient: str, action: str, status: str, diagnostic: str, context: str
) -> RecipientReport:
    if action.startswith(("delivered", "relayed", "expanded")):
        return RecipientReport(recipient, BounceClass.NOT_A_BOUNCE, status, "delivered", "")
    klass, reason, status = recipient_verdict(recipient, status, diagnostic, context)
    if action.startswith("delayed"):
        klass, reason = BounceClass.DELAY, "delayed"
    return RecipientReport(recipient, klass, status, describe(reason, status), trim(diagnostic))


def _contradicted(report: RecipientReport, notice: str) -> RecipientReport:
    """A lone HARD verdict whose notice says the mailbox exists (full, or disabled without a
    5.1.1 to say it is gone for good, as in `_verdict`) contradicts itself, and a
    self-contradicting report is no proof of a dead address."""
    if report.classification is not H:
        return report
    words = plain_words(notice)
    exists = matches_rule("mailboxfull", words) or (
        report.status != "5.1.1" and matches_rule("suspend", words)
    )
    if not exists:
        return report
    reason = describe("conflicting", report.status)
    return RecipientReport(report.recipient, S, report.status, reason, report.diagnostic)
