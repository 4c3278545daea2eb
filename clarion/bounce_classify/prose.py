"""Bounces without machine-readable parts: recipients and diagnostics found in the prose of
the ~80 MTA formats that write none, and whether a message is a failure notice at all."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import Message

from clarion.bounce_classify.mime import (
    ROLE_LOCAL_PARTS,
    Parts,
    addresses_in,
    decode_header_value,
    header_addresses,
    original_to,
)
from clarion.bounce_classify.report import (
    RECIPIENT_LIMIT,
    RULE_TEXT_LIMIT,
    RecipientReport,
    known_recipient,
    trim,
    unique,
)
from clarion.bounce_classify.verdict import describe, recipient_verdict
from clarion.models.inbound import BounceClass

# Lines where the returned message starts in MTAs that inline it into the notice.
ORIGINAL_MARKER = re.compile(
    r"^[ \t>|*=_-]{0,40}(?:"
    r"-+ ?(?:this is a copy of the message|below this line is a copy|original message"
    r"|enclosed is a copy|returned message|the original message|original message follows)"
    r"|-{0,40}[ \t]{0,9}original message (?:follows|headers?)|original message headers"
    r"|message headers follow|headers of the original|the headers of the original"
    r"|-+ ?(?:unsent|undelivered) message"
    r"|the original message (?:was|is) (?:attached|included|follows)[^\w\n]*$"
    r"|bounced e-?mail:|\*+ ?message truncated"
    r"|content-type: message/rfc822"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
HEADER_START = re.compile(
    r"^(?:Return-Path|Received|Delivered-To|DKIM-Signature|DomainKey-Signature|"
    r"X-Received|ARC-Seal|Authentication-Results|Message-I[dD]|MIME-Version|Date|From) ?:",
    re.MULTILINE | re.IGNORECASE,
)


def split_notice(text: str) -> tuple[str, str]:
    """Split inline text into the notice proper and the returned message after it."""
    marker = ORIGINAL_MARKER.search(text)
    cut = marker.start() if marker else -1
    header = _first_header_block(text)
    if header >= 0 and (cut < 0 or header < cut):
        cut = header
    if cut < 0:
        return text, ""
    return text[:cut], text[cut:]


def parse_inline_original(text: str) -> Message | None:
    """The returned message inlined after a notice, from its first header line."""
    start = HEADER_START.search(text)
    if not start:
        return None
    return email.message_from_string(text[start.start() :], policy=policy.compat32)


def _first_header_block(text: str) -> int:
    """Where a returned header block starts: two header lines in a row, after some prose."""
    for match in HEADER_START.finditer(text):
        following = text[match.end() : match.end() + 500].split("\n", 3)[1:3]
        if any(re.match(r"^(?:[\w-]+:|\s)", line) for line in following) and match.start() > 40:
            return match.start()
    return -1


# Lines that name a failed recipient, in the wording of many MTAs. The address is in group 1.
# Quantifiers are bounded (and never span lines) so hostile input cannot make the scan slow.
_LOCAL = r"[^\s<>()\"':;,]{1,64}"
_DOMAIN = r"[^\s<>()\"':;,\]]{1,255}?"
_DOMAIN_GREEDY = _DOMAIN.rstrip("?")
_ADDR = _LOCAL + "@" + _DOMAIN
RECIPIENT_LINES = tuple(
    re.compile(pattern, re.MULTILINE | re.IGNORECASE)
    for pattern in (
        # "  <user@example.org>:" or a bare address alone on its line
        rf"^[ \t>*•-]{{0,20}}[<\"]?({_ADDR})[>\"]?:?[ \t]*$",
        # ">>> user@example.org <user@example.org>"
        rf"^[ \t>*•-]{{0,20}}(?:>>>[ \t]*)?\S{{1,64}}@\S{{1,255}}[ \t]+<({_ADDR})>",
        # sendmail transcripts: "550 5.1.1 <user@example.org>... User unknown"
        rf"^[ \t]{{0,20}}[245]\d\d[ -](?:[245]\.\d{{1,3}}\.\d{{1,3}} )?<({_ADDR})>\.\.\.",
        # "user@example.org Invalid Address, ERROR_CODE :550"
        rf"^[ \t]{{0,20}}<?({_ADDR})>?[ \t]+[A-Z]",
        # Exchange: "user@example.org on 4/29/01 11:34:45 PM"
        rf"^[ \t]{{0,20}}(?:[^\s<]{{0,80}}<)?(?:mailto:)?({_ADDR})>?[ \t]+on[ \t]+\w",
        # Exchange 2007+: "Name<mailto:user@example.org>"
        rf"^[ \t]{{0,20}}\S[^<\n]{{0,60}}<mailto:({_ADDR})>[ \t]*$",
        # "<user@example.org>: reason", "user@example.org [reason]", "user@example.org ... reason"
        rf"^[ \t]{{0,20}}<?({_ADDR})>?:?[ \t]{{0,9}}(?:\[|\(|\.\.\.|:\s|\s-\s)",
        # "Delivery failed: user@example.org", "User's mailbox is full: <user@example.org>"
        r"^[^\n:]{0,40}(?:fail|full|unknown|error|undeliver|reject|invalid)[^\n:]{0,40}:"
        rf"[ \t]*<?({_ADDR})>?[ \t]*$",
        # prose: "could not be delivered to <user@example.org>", "RCPT TO: user@example.org"
        r"(?:deliver(?:ing|ed)? (?:your (?:mail|message) )?to|could not be delivered to"
        r"|couldn't be delivered to|failed (?:permanently )?(?:to|for)|permanent errors?"
        r"|rcpt to|recipient|addressed to|to the following address(?:es)?|message to"
        r"|undeliverable to"
        r"|original-recipient|final-recipient|destinataire|unknown user|no such user)"
        rf"[\s:;(<\[\"']{{1,8}}(?:rfc822;[ \t]*)?(?:mailto:)?({_LOCAL}@{_DOMAIN_GREEDY})",
    )
)


def _text_recipients(notice: str, exclude: set[str]) -> list[str]:
    """Failed recipients named in the notice, in order; sender-side addresses left out."""
    found: list[tuple[int, str]] = []
    for pattern in RECIPIENT_LINES:
        for match in pattern.finditer(notice):
            for address in addresses_in(match.group(1)):
                found.append((match.start(1), address))
    ordered = unique([a for _, a in sorted(found)])
    kept = [a for a in ordered if a not in exclude]
    roles = [a for a in kept if ROLE_LOCAL_PARTS.match(a.split("@")[0])]
    if roles and len(roles) < len(kept):
        kept = [a for a in kept if a not in roles]
    return kept


def _exim_recipients(notice: str) -> list[str]:
    """The indented list after Exim's "The following address(es) failed:" (may lack a domain)."""
    match = re.search(
        r"(?:following\s+address(?:\(es\)|es)?\s+failed|has not yet been delivered is):?\s*\n"
        r"((?:[ \t]+\S.*\n?|[ \t]*\n)+)",
        notice,
        re.IGNORECASE,
    )
    if not match:
        return []
    found = []
    for line in match.group(1).splitlines():
        if not re.match(r"^(?: {1,3}|\t)\S", line):
            continue
        addresses = addresses_in(line)
        if addresses:
            found.append(addresses[0])
        elif len(line.split()) == 1:
            found.append(line.strip().rstrip(":").strip('<>"').lower())
    return found


# Headings of the lists older MTAs write, one failed recipient a line, often a bare local
# part: old Sendmail, AOL, Yale's mailer and Exchange 5.5. The list ends at a blank line.
LISTED_RECIPIENTS = re.compile(
    r"(?:following address(?:es|\(es\))? had permanent fatal errors[ -]*"
    r"|mail to the following recipients could not be delivered[^\n]{0,200}"
    r"|message not delivered to the following:?"
    r"|did not reach the following recipient(?:s|\(s\))?:?)[ \t]*\n"
    r"(?:[ \t]*\n)?((?:[ \t]*\S[^\n]{0,300}\n?){1,100})",
    re.IGNORECASE,
)
# A bare local part stands alone on its line, or before a reason two spaces away (Yale).
BARE_LOCAL_PART = re.compile(r"^[ \t]*<?([\w.+=-]{1,64})>?(?:[ \t]*$|(?: {2,}|\t)\S)")


def _listed_recipients(notice: str) -> list[str]:
    """Each line of a listed-recipients block as deep as its first: an address or a local
    part (deeper lines explain the line above them)."""
    match = LISTED_RECIPIENTS.search(notice)
    if not match:
        return []
    lines = match.group(1).splitlines()
    depth = _indent(lines[0])
    found = []
    for line in (line for line in lines if _indent(line) == depth):
        addresses = addresses_in(line)
        bare = BARE_LOCAL_PART.match(line)
        if addresses:
            found.append(addresses[0])
        elif bare and not ROLE_LOCAL_PARTS.match(bare.group(1)):
            found.append(bare.group(1).lower())
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _qualified(rcpts: list[str], msg: Message, notice: str, parts: Parts) -> list[str]:
    """Bare local parts completed with a domain: one the notice or the original names for that
    local part, else the reporting server's own (the mailbox was on the host that bounced)."""
    known = [*addresses_in(notice), *original_to(parts)]
    sender = header_addresses(msg, "From", "Sender")
    home = sender[0].rpartition("@")[2] if sender else ""
    done = []
    for rcpt in rcpts:
        if "@" in rcpt:
            done.append(rcpt)
            continue
        match = next((a for a in known if a.rpartition("@")[0] == rcpt), "")
        done.append(match or (f"{rcpt}@{home}" if home else ""))
    return [r for r in done if r]


def _named_recipients(
    msg: Message, notice: str, exclude: set[str], parts: Parts, body: str
) -> tuple[list[str], str]:
    """Every source of failed recipients in a prose notice, the most explicit first; last, the
    whole body (SMTP32 puts a header-like block before its "undeliverable to" line). Returns
    them with the text that named them, which is then read for the reason."""
    failed = [a.lower() for a in header_addresses(msg, "X-Failed-Recipients")]
    listed = _qualified(_exim_recipients(notice) or _listed_recipients(notice), msg, notice, parts)
    rcpts = failed or listed or _text_recipients(notice, exclude)
    rcpts = rcpts or _text_recipients(notice, set()) or original_to(parts)[:1]
    if rcpts or not body:
        return rcpts, notice
    text = body[:RULE_TEXT_LIMIT]
    return _text_recipients(text, exclude), text


def text_bounces(
    msg: Message, notice: str, subject: str, exclude: set[str], parts: Parts, body: str = ""
) -> list[RecipientReport]:
    """Recipients and diagnostics of a bounce that has no machine-readable part."""
    rcpts, notice = _named_recipients(msg, notice, exclude, parts, body)
    rcpts = rcpts or [""]
    rcpts = unique(rcpts)[:RECIPIENT_LIMIT]
    delayed = _is_delay_notice(subject, notice)
    return [_prose_report(r, rcpts, notice, subject, delayed) for r in rcpts]


def _is_delay_notice(subject: str, notice: str) -> bool:
    head = subject.lower()
    if re.search(r"delayed|delay\)|warning|still being retried|not yet been delivered", head):
        return True
    return bool(
        re.search(r"no action is required on your part|will (?:continue|keep) trying", notice, re.I)
    )


def _prose_report(
    recipient: str, rcpts: list[str], notice: str, subject: str, delayed: bool
) -> RecipientReport:
    chunk = chunk_for(recipient, rcpts, notice)
    # The SMTP stage of one recipient must not be read from another recipient's transcript.
    context = notice if len(rcpts) == 1 else chunk
    klass, reason, status = recipient_verdict(recipient, "", chunk, context)
    if reason == "undefined":
        shared = _shared_text(rcpts, notice) + "\n" + subject
        klass, reason, status = recipient_verdict(recipient, status, shared, context)
    if delayed and klass is not BounceClass.NOT_A_BOUNCE:
        klass, reason = BounceClass.DELAY, "delayed"
    diagnostic = trim(chunk)
    return RecipientReport(
        known_recipient(recipient), klass, status, describe(reason, status), diagnostic
    )


def chunk_for(recipient: str, rcpts: list[str], notice: str) -> str:
    """The notice lines from this recipient's first mention to the next line that names
    another recipient or another recipient's domain (transcripts report hosts by domain)."""
    low = notice.lower()
    start = low.find(recipient) if recipient else -1
    if start < 0:
        # Unnamed in a notice about several recipients: no line of it is known to be theirs.
        return notice if len(rcpts) <= 1 else ""
    start = low.rfind("\n", 0, start) + 1
    if len(rcpts) == 1:
        return notice[start:]
    own_domain = recipient.rpartition("@")[2]
    names = {r for r in rcpts if r != recipient}
    names |= {r.rpartition("@")[2] for r in names} - {own_domain, ""}
    ends = [m.start() for n in names for m in re.finditer(re.escape(n) + r"\b", low)]
    ends = [low.rfind("\n", 0, e) + 1 for e in ends if e > start + len(recipient)]
    ends = [e for e in ends if e > start]
    return notice[start : min(ends)] if ends else notice[start:]


def _shared_text(rcpts: list[str], notice: str) -> str:
    """The notice with every recipient's own chunk removed: its common explanation."""
    if len(rcpts) <= 1:
        return notice
    low = notice.lower()
    starts = [low.find(r) for r in rcpts if r and low.find(r) >= 0]
    return notice[: min(starts)] if starts else notice


AUTOREPLY_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ _-]?(?:reply|response|respons|antwort)|out of (?:the )?office"
    r"|away (?:from|until)|on vacation|vacation|abwesenheit|absence|absent"
    r"|r[ée]ponse automatique|risposta automatica|respuesta autom[aá]tica|resposta autom[aá]tica"
    r"|automatisch antwoord|autosvar|automaattinen vastaus|自動応答|不在)",
    re.IGNORECASE,
)
BOUNCE_SENDER = re.compile(
    r"mailer[-_.]?daemon|postmaster|post_master|mail[ .]delivery|mail ?administrator"
    r"|mmsc|sysadmin|^<?>?$",
    re.IGNORECASE,
)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|problem)"
    r"|returned mail|mail delivery failed|failure notice|delivery failure|failed delivery"
    r"|could not be delivered|non[- ]?delivery|nondeliverable|mail system error"
    r"|returned to sender|delivery report|\bbounced?\b|delayed mail"
    r"|there was an error sending|warning: message|error sending",
    re.IGNORECASE,
)


BOUNCE_BODY = re.compile(
    r"could not be delivered to|couldn't be delivered to|was not delivered to"
    r"|unable to deliver (?:your )?(?:message|mail)|delivery (?:has )?failed"
    r"|permanent (?:fatal )?errors?|undeliverable (?:mail|message)|returned mail",
    re.IGNORECASE,
)


def is_autoreply(msg: Message, subject: str) -> bool:
    """Whether a message says it is an automatic reply (RFC 3834 headers or its subject)."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto.startswith("auto-replied") or msg.get("X-Autoreply") or msg.get("X-Autorespond"):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(AUTOREPLY_SUBJECT.search(subject.strip()))


def looks_like_bounce(msg: Message, subject: str, notice: str) -> bool:
    """Whether an unstructured message is a delivery failure notice at all."""
    sender = decode_header_value(msg.get("From")) if "From" in msg else "no sender"
    if BOUNCE_SENDER.search(sender) or BOUNCE_SUBJECT.search(subject):
        return True
    if msg.get_content_type() == "multipart/report" or msg.get("X-Failed-Recipients"):
        return True
    return bool(BOUNCE_BODY.search(notice[:3000]))
