"""One failure's verdict: diagnostic text first (servers often send the wrong code), then the
enhanced status code; a "user unknown" stays HARD only when something corroborates it (a 5.1.x
code, an RCPT-stage transcript, a directory's own wording)."""

from __future__ import annotations

import re

from clarion.bounce_classify.mime import ADDRESS
from clarion.bounce_classify.report import RULE_TEXT_LIMIT
from clarion.bounce_classify.rules import REASON_LABELS, STATUS_RULES, TEXT_RULES
from clarion.models.inbound import BounceClass

H, S = BounceClass.HARD, BounceClass.SOFT

ENHANCED_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
REPLY_CODE = re.compile(r"(?<![\w.+/:=-])([245][0-5]\d)(?=[\s-]|$)", re.MULTILINE)


def enhanced_status(text: str) -> str:
    """The telling enhanced status code in text: failures before successes ("250 2.1.5 Ok"
    in a transcript), specific before generic ("5.0.0" loses to "5.1.1")."""
    codes = ["{}.{}.{}".format(*m.groups()) for m in ENHANCED_STATUS.finditer(text)]
    failures = [c for c in codes if c[0] in "45"] or codes
    specific = [c for c in failures if not c.endswith(".0.0")]
    return (specific or failures or [""])[0]


def reply_code(text: str) -> str:
    """The first SMTP reply code in a text, or ""."""
    match = REPLY_CODE.search(text)
    return match.group(1) if match else ""


def text_rule(text: str) -> tuple[str, BounceClass] | None:
    """The first diagnostic-text rule that applies: its reason and class, or None."""
    for pattern, reason, klass in TEXT_RULES:
        if pattern.search(text):
            return reason, klass
    return None


def matches_rule(reason: str, text: str) -> bool:
    """Whether any text rule for this fine reason occurs in text, whatever comes first."""
    return any(r == reason and p.search(text) for p, r, _ in TEXT_RULES)


def _status_rule(status: str) -> tuple[str, BounceClass] | None:
    """The enhanced-status rule that applies: its reason and class, or None."""
    for pattern, reason, klass in STATUS_RULES:
        if pattern.search(status):
            return reason, klass
    return None


def describe(reason: str, status: str) -> str:
    """A reason for people: label, status code and the rule's short name."""
    label = REASON_LABELS.get(reason, reason)
    return f"{label} ({status}) [{reason}]" if status else f"{label} [{reason}]"


def classify_status(
    status: str, diagnostic: str = "", smtp_code: str = ""
) -> tuple[BounceClass, str]:
    """Classify one failure from the remote server's own enhanced status, diagnostic text and
    SMTP reply code (an SMTP reply, a provider's record of one)."""
    klass, reason, status = _classify_failure(status, diagnostic, smtp_code)
    if klass is H and reason == "userunknown" and status.startswith("5.7."):
        klass, reason = S, "filtered"  # see _confirm_unknown
    return klass, describe(reason, status or reply_code(smtp_code or diagnostic))


def _classify_failure(
    status: str, diagnostic: str, smtp_code: str = ""
) -> tuple[BounceClass, str, str]:
    """Class, fine reason and the status code actually used."""
    status = enhanced_status(status or "") or enhanced_status(diagnostic)
    code = (smtp_code or "").strip()[:3] or reply_code(diagnostic)
    temporary = status.startswith("4") or (not status and code.startswith("4"))
    reason, klass = _verdict(status, plain_words(diagnostic), temporary)
    return klass, reason, status


def plain_words(text: str) -> str:
    """The diagnostic without addresses and URLs (whose words would trigger the rules), and
    without the long tokens of ids and hashes, in single spaces."""
    text = re.sub(r"\b(?:https?|ftp)://([^/\s]{1,255})\S*", r" \1 ", text[:RULE_TEXT_LIMIT])
    text = re.sub(r"\S{80,}", " <token> ", ADDRESS.sub(" <address> ", text))
    return re.sub(r"\s+", " ", text)


def _verdict(status: str, text: str, temporary: bool) -> tuple[str, BounceClass]:
    """The fine reason and class; text wins over codes because many servers mislabel."""
    if status.startswith("2"):
        return "delivered", BounceClass.NOT_A_BOUNCE
    by_text = text_rule(text)
    by_status = _status_rule(status)
    if by_text is None:
        return by_status or ("undefined", S)
    reason, klass = by_text
    # "Inactive" or "disabled" with 5.1.1 (bad mailbox) means the address is gone for good.
    if reason == "suspend" and status == "5.1.1":
        return "userunknown", H
    # The remote server asked us to retry: never treat that as a verdict on the address.
    if temporary and klass is H:
        return reason, S
    # A bare "rejected"/"denied" is weaker than any status code.
    if reason == "refused" and by_status:
        return by_status
    return reason, klass


# "User unknown" is the one verdict that removes a reader, so in a relayed notice it needs
# corroboration: an enhanced status code (even a lying 5.0.0 or 5.7.1; but not 5.2.x, which
# says the mailbox exists), an RCPT-stage transcript, or wording that only a directory lookup
# produces. A "user unknown" sent only after the message body was seen is a content filter's
# answer (real mailbox checks happen at RCPT TO): SOFT. Pipelined RCPT rejections also print
# ">>> DATA", but the DATA reply then says there was no valid recipient.
DATA_STAGE = re.compile(
    r"(?:>>>|in\s+reply\s+to|after|final|command[\s:-]{0,9})\s{0,9}(?:end\s+of\s+)?data\b"
    r"|failed after i sent the message",
    re.IGNORECASE,
)
PIPELINED_RCPT = re.compile(r"need rcpt|no valid recipients|\b503\b", re.IGNORECASE)
RCPT_STAGE = re.compile(
    r"in\s+reply\s+to\s+rcpt|>>>\s*rcpt\s+to|after\s+rcpt\b|rcpt\s+to\s+response|our\s+rcpt\s+to"
    r"|smtp:rcpt"
    r"|does not like recipient|\[rcpt_to\]",
    re.IGNORECASE,
)
# A reply that repeats the address in angle brackets ("<a@b>: Recipient address rejected",
# "<a@b>... User unknown") answers RCPT TO:<a@b>, the command that checks a mailbox.
ECHOED_RECIPIENT = re.compile(
    r"\b[45]\d\d[ -]{1,3}(?:[45]\.\d{1,3}\.\d{1,3}\s{1,3})?"
    r"<[^<>\s@]{1,64}@[^<>\s]{1,255}>(?::|\.\.\.)"
)
DIRECTORY_LOOKUP = re.compile(
    r"in (?:local|virtual) (?:recipient|alias|mailbox) table"
    r"|not listed in (?:the )?(?:domino directory|public name)"
    r"|recipient name is not recognized|resolver\.adr\.recip|recipientnotfound"
    r"|no mailbox here by that name|account that you tried to reach does not exist"
    r"|because the address couldn't be found|delivery error: dd this user doesn't have"
    r"|invalid final delivery userid",
    re.IGNORECASE,
)


def _smtp_stage(text: str) -> str:
    """Which SMTP command the failure answered, as far as the notice tells: DATA, RCPT or ""."""
    if DATA_STAGE.search(text):
        return "RCPT" if PIPELINED_RCPT.search(text) else "DATA"
    return "RCPT" if RCPT_STAGE.search(text) else ""


def recipient_verdict(
    recipient: str, status: str, diagnostic: str, context: str, code: str = ""
) -> tuple[BounceClass, str, str]:
    """Classify one recipient's failure, using the notice around it for the SMTP stage."""
    klass, reason, status = _classify_failure(status, diagnostic, code)
    if klass is H and reason == "userunknown":
        return _confirm_unknown(status, diagnostic, context)
    return klass, reason, status


def _confirm_unknown(status: str, diagnostic: str, context: str) -> tuple[BounceClass, str, str]:
    """Keep a "user unknown" verdict HARD only when something corroborates it."""
    # The remote server's own 5.7.x code says its policy refused us ("Access denied" from an
    # access table, filters that hide which mailboxes exist), whatever words it adds.
    if enhanced_status(diagnostic).startswith("5.7."):
        return S, "filtered", status
    if DIRECTORY_LOOKUP.search(diagnostic) or status.startswith("5.1."):
        return H, "userunknown", status
    stage = _smtp_stage(diagnostic + "\n" + context)
    if stage == "DATA":
        return S, "filtered", status
    if stage == "RCPT":
        return H, "userunknown", status
    # Without a transcript, a code still has to agree: none, or 5.2.x (the mailbox exists),
    # leaves the words unconfirmed; the generic 5.0.0 needs the reply to echo the address.
    if not status or status.startswith("5.2."):
        return S, "unconfirmed", status
    if status == "5.0.0" and not ECHOED_RECIPIENT.search(diagnostic):
        return S, "unconfirmed", status
    return H, "userunknown", status
