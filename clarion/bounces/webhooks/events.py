"""Provider events as reports: Amazon SES (through SNS), Mailgun, SendGrid and Postmark.

Each event about one recipient becomes a `Report`, classified by the same rules as a bounce
message (`clarion.bounce_classify`), with the event itself as its evidence. A provider's own
verdict never makes a bounce harder than its SMTP words do: "permanent" or "HardBounce" with a
reply that proves nothing stays soft, and a hard reading of a temporary event is softened.
Events that report nothing wrong (delivered, opened, clicked) yield no report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from clarion.bounce_classify import (
    BounceClass,
    RecipientReport,
    Report,
    classify_message,
    classify_status,
    ses_event_report,
)
from clarion.bounce_classify.report import known_recipient, message_class, trim
from clarion.bounce_classify.verdict import enhanced_status

H, S = BounceClass.HARD, BounceClass.SOFT
PROVIDERS = ("ses", "mailgun", "sendgrid", "postmark")
Event = tuple[Report, bytes]  # the report and its evidence


def reports(source: str, raw: bytes) -> list[Event]:
    """The reports in a verified webhook body from `source`."""
    data = json.loads(raw)
    found = {
        "ses": _ses,
        "mailgun": _mailgun,
        "sendgrid": _sendgrid,
        "postmark": _postmark,
    }[source](data)
    return [(report, evidence) for report, evidence in found if report.recipients]


def _evidence(data: Any) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


def _report(recipient: RecipientReport, message_id: str = "") -> Report:
    headers = {"Message-ID": message_id} if message_id else {}
    return Report(message_class([recipient]), (recipient,), (), headers)


def _failure(
    address: str, status: str, diagnostic: str, permanent: bool, code: str = ""
) -> RecipientReport:
    klass, reason = classify_status(status, diagnostic, code)
    if klass is H and not permanent:
        klass = S
    status = enhanced_status(status) or enhanced_status(diagnostic)
    return RecipientReport(
        known_recipient(address.lower()), klass, status, reason, trim(diagnostic)
    )


def _ses(envelope: dict[str, Any]) -> Iterator[Event]:
    """An SNS Notification whose Message is an SES event (SubscriptionConfirmation has none)."""
    if envelope.get("Type") != "Notification":
        return
    try:
        event = json.loads(str(envelope.get("Message", "")))
    except (ValueError, RecursionError):
        return  # another publisher's text on the topic: nothing of SES's to read
    report = ses_event_report(event) if isinstance(event, dict) else None
    if report is not None and report.classification is not BounceClass.NOT_A_BOUNCE:
        yield report, _evidence(event)


def _mailgun(payload: dict[str, Any]) -> Iterator[Event]:
    event = payload.get("event-data") or {}
    kind = str(event.get("event", ""))
    address = str(event.get("recipient", ""))
    headers = (event.get("message") or {}).get("headers") or {}
    message_id = str(headers.get("message-id", ""))
    if kind == "complained":
        rcpt = RecipientReport(
            known_recipient(address.lower()), BounceClass.COMPLAINT, "", "complaint", ""
        )
    elif kind == "failed":
        status = event.get("delivery-status") or {}
        diagnostic = " ".join(str(status.get(k) or "") for k in ("message", "description")).strip()
        permanent = event.get("severity") == "permanent"
        rcpt = _failure(address, "", diagnostic, permanent, str(status.get("code") or ""))
    else:
        return
    yield _report(rcpt, message_id), _evidence(event)


def _sendgrid(events: list[dict[str, Any]]) -> Iterator[Event]:
    for event in events if isinstance(events, list) else []:
        kind = str(event.get("event", ""))
        address = str(event.get("email", ""))
        message_id = str(event.get("smtp-id", ""))
        if kind == "spamreport":
            rcpt = RecipientReport(
                known_recipient(address.lower()), BounceClass.COMPLAINT, "", "complaint", ""
            )
        elif kind == "deferred":
            reason = f"delivery delayed: {event.get('response', '')}"
            rcpt = RecipientReport(
                known_recipient(address.lower()), BounceClass.DELAY, "", reason, ""
            )
        elif kind == "dropped":
            # SendGrid did not try: its own suppression list, not a verdict of the recipient.
            reason = f"dropped by SendGrid: {event.get('reason', '')}"
            rcpt = RecipientReport(
                known_recipient(address.lower()), BounceClass.NOT_A_BOUNCE, "", reason, ""
            )
        elif kind == "bounce":
            diagnostic = str(event.get("reason") or "")
            status = str(event.get("status") or "")
            # type "blocked": refused for now (often our reputation); "bounce": for good.
            permanent = event.get("type", "bounce") == "bounce"
            rcpt = _failure(address, status, diagnostic, permanent)
        else:
            continue
        yield _report(rcpt, message_id), _evidence(event)


# Postmark bounce types whose meaning its Details cannot change.
POSTMARK_CLASSES = {
    "SpamComplaint": BounceClass.COMPLAINT,
    "AutoResponder": BounceClass.AUTOREPLY,
    "Blocked": BounceClass.SENDER_FAULT,
    "DMARCPolicy": BounceClass.SENDER_FAULT,
    "SpamNotification": BounceClass.SENDER_FAULT,
    "VirusNotification": BounceClass.SENDER_FAULT,
}
POSTMARK_PERMANENT = ("HardBounce", "BadEmailAddress", "ManuallyDeactivated")
POSTMARK_FAILURES = ("SoftBounce", "Transient", "DnsError", "Unknown", *POSTMARK_PERMANENT)


def _postmark(record: dict[str, Any]) -> Iterator[Event]:
    kind = str(record.get("Type", ""))
    address = str(record.get("Email", ""))
    dump = record.get("Content")
    if isinstance(dump, str) and "\n" in dump and kind in POSTMARK_FAILURES:
        # The full bounce message: read it like any other, keep Postmark's record as evidence.
        report = classify_message(dump.encode())
        if report.recipients:
            yield report, _evidence(record)
            return
    if kind in POSTMARK_CLASSES:
        klass = POSTMARK_CLASSES[kind]
        reason = f"{record.get('Name') or kind}: {record.get('Description', '')}".strip()
        rcpt = RecipientReport(known_recipient(address.lower()), klass, "", reason[:300], "")
    elif kind in POSTMARK_FAILURES:
        diagnostic = str(record.get("Details") or record.get("Description") or "")
        rcpt = _failure(address, "", diagnostic, kind in POSTMARK_PERMANENT)
    else:
        return
    yield _report(rcpt), _evidence(record)
