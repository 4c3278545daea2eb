"""What a classified inbound message says: the report types and their shared limits."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from clarion.models.inbound import BounceClass

# How much of a remote server's diagnostic is kept as evidence.
DIAGNOSTIC_LIMIT = 300
# Real notices are a few kilobytes; reading more only gives hostile input more to chew on.
TEXT_LIMIT = 200_000
RULE_TEXT_LIMIT = 20_000
# Clarion sends one recipient per message; a report naming hundreds is not about us.
RECIPIENT_LIMIT = 100

# Headers kept from the returned original message: they tie a report to a delivery.
ORIGINAL_HEADERS = (
    "Message-ID",
    "List-Unsubscribe",
    "List-Id",
    "Feedback-ID",
    "From",
    "To",
    "Subject",
)


@dataclass(frozen=True)
class RecipientReport:
    """What a report says about one recipient. `recipient` is None when the report names no
    address (an ARF complaint with its addresses redacted): never an empty string."""

    recipient: str | None
    classification: BounceClass
    status: str
    reason: str
    diagnostic: str
    feedback_type: str = ""


@dataclass(frozen=True)
class Report:
    """What one inbound message says: its class, its recipients and how to find the delivery."""

    classification: BounceClass
    recipients: tuple[RecipientReport, ...]
    verp_tokens: tuple[str, ...]
    original_headers: dict[str, str] = field(default_factory=dict)


# Which class speaks for the whole message when recipients differ.
CLASS_PRIORITY = (
    BounceClass.COMPLAINT,
    BounceClass.HARD,
    BounceClass.SOFT,
    BounceClass.SENDER_FAULT,
    BounceClass.DELAY,
    BounceClass.AUTOREPLY,
    BounceClass.NOT_A_BOUNCE,
)


def message_class(recipients: Iterable[RecipientReport]) -> BounceClass:
    """The class of a whole report: its most consequential recipient's."""
    present = {r.classification for r in recipients}
    return next((c for c in CLASS_PRIORITY if c in present), BounceClass.NOT_A_BOUNCE)


def known_recipient(address: str | None) -> str | None:
    """The address a report names, or None when it names none (never an empty string)."""
    return address.strip() or None if address is not None else None


def trim(text: str) -> str:
    """A diagnostic in single spaces, cut to what is worth keeping as evidence."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= DIAGNOSTIC_LIMIT else text[: DIAGNOSTIC_LIMIT - 1] + "…"


def unique(items: Iterable[str]) -> list[str]:
    """The items in their first order, without repeats or None."""
    return list(dict.fromkeys(i for i in items if i is not None))


def dedupe(reports: list[RecipientReport]) -> list[RecipientReport]:
    """One report per recipient; the first (most specific) wins."""
    seen: set[str | None] = set()
    kept = []
    for report in reports:
        if report.recipient and report.recipient in seen:
            continue
        seen.add(report.recipient)
        kept.append(report)
    return kept
