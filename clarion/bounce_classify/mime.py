"""Reading a report: its parts, decoded text, addresses and "Name: value" field blocks."""

from __future__ import annotations

import email
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message

from clarion.bounce_classify.report import TEXT_LIMIT, unique

# Bounded like RFC 5321's limits, which also keeps the scan linear on hostile input.
ADDRESS = re.compile(
    r"[\w.!#$%&*+/=?^~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,10}"
    r"[A-Za-z]{2,24}|[\w.!#$%&*+/=?^~-]{1,64}@\[[0-9.]{7,15}\]"
)
VERP_TOKEN = re.compile(r"(?<![\w.+-])b\+([A-Za-z0-9._=-]+)@", re.IGNORECASE)
ROLE_LOCAL_PARTS = re.compile(
    r"^(?:postmaster|mailer-daemon|mail-daemon|mailer_daemon|abuse|hostmaster|no-?reply|"
    r"root|daemon|mail\.delivery\.system|post_master)$",
    re.IGNORECASE,
)


def decode_header_value(value: object) -> str:
    """A header value with its RFC 2047 words decoded; the raw text when they are broken."""
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, MessageError):
        return str(value)


# Exchange writes an X.400 form, "dda:SMTP=user@example.org;": the prefix is no part of it.
X400_PREFIX = re.compile(r"^(?:smtp|rfc-?822)=", re.IGNORECASE)


def addresses_in(value: str) -> list[str]:
    """The addresses in a text, lower-cased, in order."""
    return [X400_PREFIX.sub("", a.lower().strip(".")) for a in ADDRESS.findall(value)]


def header_addresses(msg: Message, *names: str) -> list[str]:
    """The addresses in the named headers of a message."""
    found: list[str] = []
    for name in names:
        for value in msg.get_all(name) or []:
            found.extend(addresses_in(decode_header_value(value)))
    return found


def _part_text(part: Message) -> str:
    """The decoded text of a leaf part, whatever its charset claims."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    try:
        text = payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, UnicodeError, MessageError):
        text = payload.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text


def _html_to_text(text: str) -> str:
    text = _drop_elements(text[:TEXT_LIMIT], ("style", "script"))
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|<p\b[^>]*>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _drop_elements(text: str, names: tuple[str, ...]) -> str:
    """Remove <style> and <script> elements with their content, in one linear pass."""
    low, kept, at = text.lower(), [], 0
    while True:
        starts = [i for i in (low.find(f"<{n}", at) for n in names) if i >= 0]
        if not starts:
            return "".join(kept) + text[at:]
        start = min(starts)
        name = next(n for n in names if low.startswith(f"<{n}", start))
        end = low.find(f"</{name}>", start)
        kept.append(text[at:start])
        if end < 0:
            return "".join(kept)
        at = end + len(name) + 3


def _nested_text(part: Message) -> str:
    """The field blocks of a message/* report part, as text ("Name: value" lines)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # Joined by hand: the email generator refuses some malformed fields.
        blocks = (p.items() if isinstance(p, Message) else [] for p in payload)
        return "\n\n".join("\n".join(f"{k}: {v}" for k, v in b) for b in blocks)
    return _part_text(part)


@dataclass
class Parts:
    """The parts of a report that matter, found in one walk."""

    notification: list[str] = field(default_factory=list)
    delivery_status: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    original: Message | None = None
    hotmail_recipients: list[str] = field(default_factory=list)
    # Reports inside an attached message: a forwarded report, or a bounce of a bounce.
    nested_delivery_status: list[str] = field(default_factory=list)
    nested_feedback: list[str] = field(default_factory=list)


ORIGINAL_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
    "message/partial",
)


def walk_parts(msg: Message, parts: Parts) -> None:
    """Sort the leaves of msg into notification text, reports and the original message."""
    ctype = msg.get_content_type()
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        parts.delivery_status.append(_nested_text(msg))
    elif ctype == "message/feedback-report":
        parts.feedback.append(_nested_text(msg))
    elif ctype in ORIGINAL_TYPES:
        _walk_original(msg, parts)
    elif msg.is_multipart():
        payload = msg.get_payload()
        children = payload if isinstance(payload, list) else []
        if ctype == "multipart/alternative":
            children = _preferred_alternative(children)
        for child in children:
            walk_parts(child, parts)
    elif _is_notice_text(msg, ctype):
        parts.notification.append(_part_text(msg))


def _is_notice_text(part: Message, ctype: str) -> bool:
    """Text meant for a person; a multipart whose boundary is missing is read as text too."""
    if ctype.startswith("multipart/") and not part.is_multipart():
        return True
    return ctype.startswith("text/") and not _is_attachment_of_original(part)


def _preferred_alternative(children: list[Message]) -> list[Message]:
    plain = [c for c in children if c.get_content_type() == "text/plain"]
    return plain[:1] or children[:1]


def _is_attachment_of_original(part: Message) -> bool:
    """A returned message attached as a text/plain file is still the original, not the notice."""
    name = str(part.get_filename() or "").lower()
    return name.endswith((".eml", ".msg")) or "original" in name


def _walk_original(part: Message, parts: Parts) -> None:
    """Keep the first returned message, and any reports nested inside attached messages."""
    payload = part.get_payload()
    inner: Message | None = None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
    elif isinstance(payload, str) or part.get_content_type() == "text/rfc822-headers":
        inner = email.message_from_string(_part_text(part), policy=policy.compat32)
    if inner is None:
        return
    parts.hotmail_recipients.extend(header_addresses(inner, "X-HmXmrOriginalRecipient"))
    nested = Parts()
    walk_parts(inner, nested)
    parts.nested_delivery_status.extend(nested.delivery_status + nested.nested_delivery_status)
    parts.nested_feedback.extend(nested.feedback + nested.nested_feedback)
    if parts.original is None:
        parts.original = inner


def original_to(parts: Parts) -> list[str]:
    """The To addresses of the returned original, if there is one."""
    if parts.original is None:
        return []
    return unique(header_addresses(parts.original, "To"))


FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")


def field_blocks(text: str) -> list[dict[str, str]]:
    """Split report text into blocks of lower-cased fields; continuation lines are joined."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in _unquote(text).splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        match = FIELD_LINE.match(line)
        if match:
            last = match.group(1).lower()
            # A repeated Final-Recipient without a blank line before it starts a new recipient.
            if last in current and last in ("final-recipient", "original-recipient"):
                blocks.append(current)
                current = {}
            # Other repeated fields (ARF's Original-Rcpt-To) accumulate.
            value = match.group(2).strip()
            current[last] = f"{current[last]}, {value}" if last in current else value
        elif last and line[:1] in " \t":
            current[last] += " " + line.strip()
    if current:
        blocks.append(current)
    return blocks


def _unquote(text: str) -> str:
    """Drop the "> " of a forwarded message so its fields read as fields."""
    if not re.search(r"^>+ ?(?:Final-Recipient|Feedback-Type|Action):", text, re.M | re.I):
        return text
    return re.sub(r"^>+ ?", "", text, flags=re.MULTILINE)


def field_address(value: str) -> str:
    """The address of a report field such as "rfc822; user@example.org"."""
    value = value.split(";", 1)[1] if ";" in value else value
    found = addresses_in(value)
    if found:
        return found[0]
    return value.strip().strip("<>").strip().lower()
