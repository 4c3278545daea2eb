"""Classify one inbound message: try each kind of report, most machine-readable first."""

from __future__ import annotations

import email
import re
from collections.abc import Iterable, Iterator, Sequence
from email import policy
from email.message import Message
from pathlib import Path

from clarion.bounce_classify.complaints import complaint_reports
from clarion.bounce_classify.dsn import dsn_recipients
from clarion.bounce_classify.mime import (
    VERP_TOKEN,
    Parts,
    decode_header_value,
    header_addresses,
    walk_parts,
)
from clarion.bounce_classify.prose import (
    AUTOREPLY_SUBJECT,
    BOUNCE_SENDER,
    is_autoreply,
    looks_like_bounce,
    parse_inline_original,
    split_notice,
    text_bounces,
)
from clarion.bounce_classify.report import (
    ORIGINAL_HEADERS,
    TEXT_LIMIT,
    RecipientReport,
    Report,
    message_class,
    unique,
)
from clarion.bounce_classify.ses import provider_report
from clarion.bounce_classify.verdict import describe
from clarion.models.inbound import BounceClass


def classify_message(raw: bytes, envelope_to: Sequence[str] = ()) -> Report:
    """Classify one inbound message: bounce, delay, complaint, auto-reply or not a report."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    tokens = _verp_tokens(msg, envelope_to)
    parts = Parts()
    walk_parts(msg, parts)
    body = "\n".join(parts.notification)[:TEXT_LIMIT].replace("\r\n", "\n")
    notice, inline_original = split_notice(body)
    if parts.original is None and inline_original:
        parts.original = parse_inline_original(inline_original)
    headers = _original_headers(parts.original)
    provider = provider_report(body)
    if provider is not None:
        tokens = tuple(unique([*tokens, *provider.verp_tokens]))
        return Report(
            provider.classification,
            provider.recipients,
            tokens,
            headers or provider.original_headers,
        )
    recipients = _recipients(msg, parts, body, notice, envelope_to)
    return Report(message_class(recipients), tuple(recipients), tokens, headers)


def _recipients(
    msg: Message, parts: Parts, body: str, notice: str, envelope_to: Sequence[str]
) -> list[RecipientReport]:
    """Try each kind of report, most authoritative first."""
    complaint = complaint_reports(msg, parts, body)
    if complaint is not None:
        return complaint
    dsn = dsn_recipients(parts, body, notice)
    if dsn:
        return dsn
    subject = decode_header_value(msg.get("Subject"))
    if looks_like_bounce(msg, subject, notice) and not _is_personal_autoreply(msg, subject):
        exclude = _sender_side(msg, parts, envelope_to)
        return text_bounces(msg, notice, subject, exclude, parts, body)
    if is_autoreply(msg, subject):
        sender = header_addresses(msg, "From")
        reason = describe("vacation", "")
        sent_by = sender[0] if sender else None
        return [RecipientReport(sent_by, BounceClass.AUTOREPLY, "", reason, "")]
    return []


def _is_personal_autoreply(msg: Message, subject: str) -> bool:
    """An out-of-office reply can look like a bounce only by its Auto-Submitted header."""
    sender = decode_header_value(msg.get("From"))
    return bool(AUTOREPLY_SUBJECT.search(subject.strip())) and not BOUNCE_SENDER.search(sender)


def _sender_side(msg: Message, parts: Parts, envelope_to: Sequence[str]) -> set[str]:
    """Addresses that belong to us or the MTA, never to a failed recipient."""
    names = ("From", "To", "Cc", "Reply-To", "Sender", "Return-Path", "Delivered-To")
    found = set(header_addresses(msg, *names))
    found.update(a.lower() for a in envelope_to)
    if parts.original is not None:
        original = ("From", "Sender", "Reply-To", "Return-Path", "Errors-To")
        found.update(header_addresses(parts.original, *original))
    return found


def _original_headers(original: Message | None) -> dict[str, str]:
    if original is None:
        return {}
    found = {}
    for name in ORIGINAL_HEADERS:
        value = original.get(name)
        if value is not None:
            found[name] = re.sub(r"\s+", " ", decode_header_value(value)).strip()
    return found


def _verp_tokens(msg: Message, envelope_to: Sequence[str]) -> tuple[str, ...]:
    values = list(envelope_to)
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To"):
        values.extend(str(v) for v in msg.get_all(name) or [])
    return tuple(unique([m for v in values for m in VERP_TOKEN.findall(v)]))


def classify_files(paths: Iterable[str | Path]) -> Iterator[dict[str, object]]:
    """Classify message files, one summary dict per file (for the command line)."""
    for path in paths:
        report = classify_message(Path(path).read_bytes())
        yield {
            "file": str(path),
            "recipients": [r.recipient for r in report.recipients],
            "class": str(report.classification),
            "status": ",".join(r.status for r in report.recipients),
            "reason": "; ".join(r.reason for r in report.recipients),
        }
