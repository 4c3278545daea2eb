"""Amazon SES notifications (bounce, complaint, delivery): by mail, or as SNS webhook events."""

from __future__ import annotations

import json
import re
from typing import Any

from clarion.bounce_classify.complaints import complaint_report
from clarion.bounce_classify.mime import VERP_TOKEN
from clarion.bounce_classify.report import (
    ORIGINAL_HEADERS,
    RecipientReport,
    Report,
    known_recipient,
    message_class,
    trim,
)
from clarion.bounce_classify.verdict import classify_status
from clarion.models.inbound import BounceClass

H, S = BounceClass.HARD, BounceClass.SOFT


def provider_report(body: str) -> Report | None:
    """The report of an SES notification found in a mail body, or None."""
    data = _ses_notification(body)
    return ses_event_report(data) if data is not None else None


def ses_event_report(data: dict[str, Any]) -> Report | None:
    """The report of one SES event (bounce, complaint or delivery); None for other events."""
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    recipients: list[RecipientReport]
    if kind == "complaint":
        info = data.get("complaint") or {}
        ftype = str(info.get("complaintFeedbackType") or "abuse")
        rcpts = [str(r.get("emailAddress", "")) for r in info.get("complainedRecipients", [])]
        recipients = [complaint_report(r.lower(), ftype) for r in rcpts]
    elif kind == "bounce":
        recipients = _ses_bounces(data.get("bounce") or {})
    elif kind == "delivery":
        rcpts = (data.get("delivery") or {}).get("recipients", [])
        delivered = BounceClass.NOT_A_BOUNCE
        recipients = [
            RecipientReport(known_recipient(str(r).lower()), delivered, "2.0.0", "delivered", "")
            for r in rcpts
        ]
    else:
        return None
    mail = data.get("mail") or {}
    # mail.source is the envelope sender: our VERP address when SES kept it.
    tokens = tuple(VERP_TOKEN.findall(str(mail.get("source") or "")))
    return Report(message_class(recipients), tuple(recipients), tokens, _ses_headers(mail))


def _ses_notification(body: str) -> dict | None:
    """The SES event in a mail body: bare (email protocol) or inside an SNS envelope (JSON)."""
    match = re.search(r'\{\s*"(?:notificationType|eventType)"', body)
    if match:
        data = _json_at(body[match.start() :])
        return data if isinstance(data, dict) else None
    start = body.find("{")
    envelope = _json_at(body[start:]) if start >= 0 and '\\"notificationType' in body else None
    if isinstance(envelope, dict) and isinstance(envelope.get("Message"), str):
        data = _json_at(envelope["Message"])
        return data if isinstance(data, dict) else None
    return None


def _json_at(text: str) -> object:
    """The JSON value text starts with; mail gateways may have wrapped its long line."""
    for candidate in (text, re.sub(r"\r?\n", "", text)):
        try:
            return json.JSONDecoder().raw_decode(candidate)[0]
        except ValueError:
            continue
    return None


def _ses_bounces(info: dict) -> list[RecipientReport]:
    permanent = str(info.get("bounceType", "")).lower() == "permanent"
    found = []
    for rcpt in info.get("bouncedRecipients", []):
        diagnostic = str(rcpt.get("diagnosticCode") or "")
        status = str(rcpt.get("status") or "")
        klass, reason = classify_status(status, diagnostic)
        if klass is H and not permanent:
            klass = S
        address = str(rcpt.get("emailAddress", "")).lower()
        found.append(
            RecipientReport(known_recipient(address), klass, status, reason, trim(diagnostic))
        )
    return found


def _ses_headers(mail: dict) -> dict[str, str]:
    """Our headers of the original, from mail.headers (when SES includes them) or the
    common headers it always sends."""
    headers = {h.get("name", ""): h.get("value", "") for h in mail.get("headers", [])}
    common = mail.get("commonHeaders") or {}
    if common.get("messageId") and not any(k.lower() == "message-id" for k in headers):
        headers["Message-ID"] = common["messageId"]
    if mail.get("messageId"):
        headers["X-SES-Message-ID"] = mail["messageId"]
    wanted = {h.lower() for h in ORIGINAL_HEADERS} | {"x-ses-message-id"}
    return {k: str(v) for k, v in headers.items() if k.lower() in wanted}
