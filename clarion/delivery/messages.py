"""The bulk message: a MIME skeleton built once per alert, filled per recipient in microseconds.

Everything that is the same for every reader (headers, the MIME structure, the literal text of
both parts, the canonical form of the signed static headers) is prepared once. Per recipient
only the markers of the frozen content are filled (greeting, unsubscribe and preferences URLs,
the click token of tracked links) and the message signed. A mostly-ASCII part (every HTML part)
is quoted-printable with its literal chunks encoded once (clarion.delivery.qp), so only the
reader's values are encoded per message; any other part is base64-encoded per message.

Each message carries three delivery tokens, one per purpose (clarion.tokens): the click token
in its links, the VERP token only in the envelope sender, the mailto token only in the
List-Unsubscribe header. What a reader forwards (body, links) holds the click token alone.
"""

from __future__ import annotations

import binascii
import hmac
import html
import secrets
import time
from dataclasses import dataclass
from email.utils import formatdate, parseaddr
from typing import Any

from clarion import i18n, tokens
from clarion.addresses import needs_smtputf8, wire_address
from clarion.alerts.freeze import split_markers
from clarion.alerts.personal import PER_RECIPIENT, reader_values, split_slot
from clarion.config import Settings
from clarion.delivery import dkim, qp
from clarion.delivery.headers import address_field, decoded, header_value
from clarion.inputs import header_text
from clarion.tokens import CLICK, MAILTO, VERP, delivery_tokens

# Signed header fields, in h= order; Reply-To is signed only when the list sets one.
SIGNED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
)
_PER_RECIPIENT = ("To", "Date", "Message-ID", "List-Unsubscribe")
# Named once more in h= than they occur (RFC 6376 8.15): a field added after signing, a second
# From or a Reply-To or Cc that was not there, breaks the signature. Free per message: the
# canonical data stays the same, only the h= list (built once per alert) is longer.
OVERSIGNED = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Post",
    "List-Help",
    "List-Subscribe",
    "List-Owner",
    "List-Archive",
)


_GREETINGS: dict[str, tuple[str, str]] = {}


def greetings(lang: str) -> tuple[str, str]:
    """The greeting with a name (`%(name)s`) and without, in `lang`; translated once."""
    found = _GREETINGS.get(lang)
    if found is None:
        found = _GREETINGS[lang] = (
            i18n.gettext("Hello %(name)s,", lang),
            i18n.gettext("Hello,", lang),
        )
    return found


def greeting_for(name: str | None, lang: str = i18n.SOURCE_LANGUAGE) -> str:
    """The first line of every alert in `lang`: the reader's name if we have one.

    A dict lookup per message, never a catalog search: it runs once per recipient.
    """
    named, anonymous = _GREETINGS.get(lang) or greetings(lang)
    name = " ".join((name or "").split())
    return named.replace("%(name)s", name) if name else anonymous


def b64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines joined by CRLF (RFC 2045), no final line break."""
    enc = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([enc[i : i + 76] for i in range(0, len(enc), 76)])


BASE64 = "base64"
QUOTED_PRINTABLE = "quoted-printable"


def part_heads(
    boundary: str, encodings: tuple[str, str] = (BASE64, BASE64)
) -> tuple[bytes, bytes, bytes]:
    """The heads of the plain and the HTML part of a multipart/alternative body, and its end."""
    plain, html_head = (
        f"--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        for kind, encoding in zip(("plain", "html"), encodings, strict=True)
    )
    return plain, html_head, f"\r\n--{boundary}--\r\n".encode()


def alternative_body(heads: tuple[bytes, bytes, bytes], text: bytes, html_part: bytes) -> bytes:
    """The body: both parts base64 (7-bit, already in DKIM's canonical form)."""
    return encoded_body(heads, b64_lines(text), b64_lines(html_part))


def encoded_body(heads: tuple[bytes, bytes, bytes], text: bytes, html_part: bytes) -> bytes:
    """The body from parts already encoded as their heads say (and in canonical form)."""
    return b"".join((heads[0], text, b"\r\n", heads[1], html_part, heads[2]))


def signed_head(
    order: list[str],
    values: dict[str, str],
    canonical: dict[str, bytes],
    body: bytes,
    signers: tuple[dkim.DkimSigner, ...],
    timestamp: int,
) -> bytes:
    """The header block in `order`, each configured key's DKIM-Signature first; `canonical`
    holds fields already in canonical form (the static ones of an alert), the rest is done here.
    `body` must be in relaxed canonical form already (base64 and our quoted-printable are)."""
    head = [f"{k}: {values[k]}\r\n" for k in order]
    if signers:
        data = b"".join(canonical.get(k) or dkim.relaxed_header(k, values[k]) for k in order)
        bh = dkim.body_hash(body)  # already canonical: base64 lines and boundaries only
        # Each key signs the same fields; none signs another's DKIM-Signature.
        head[:0] = [
            f"DKIM-Signature: {signer.signature(data, bh, timestamp)}\r\n" for signer in signers
        ]
    return "".join(head).encode() + b"\r\n"


def reply_to_field(raw: str | None) -> str | None:
    """The list's Reply-To on the wire: a name in encoded-words, the domain in A-labels, so
    that only a non-ASCII local part makes the headers need SMTPUTF8."""
    name, address = parseaddr(header_text(raw or ""))
    if not address:
        return None
    return address_field(decoded(name), wire_address(address), len("Reply-To: "))


@dataclass(frozen=True)
class Recipient:
    """One reader of one message: what the ledger and the subscriber row give us."""

    delivery_id: int
    subscriber_uid: str
    email: str
    name: str | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for SMTP: envelope, bytes (CRLF, no dot-stuffing needed), Message-ID."""

    envelope_from: str
    rcpt: str
    data: bytes
    message_id: str
    smtputf8: bool


class _Part:
    """One frozen text (HTML or plain) as literal byte chunks with slots for the fields; a
    personalisation field's slot carries its fallback, used when the reader has no value."""

    def __init__(self, frozen: str, crlf: bool = True) -> None:
        if crlf:
            frozen = frozen.replace("\r\n", "\n").replace("\n", "\r\n")
        parts = split_markers(frozen)
        self.chunks: list[Any] = [p.encode() if i % 2 == 0 else None for i, p in enumerate(parts)]
        self.slots = [
            (i, *(v.encode() if j else v for j, v in enumerate(split_slot(parts[i]))))
            for i in range(1, len(parts), 2)
        ]
        self.personal = any(fallback or name in PER_RECIPIENT for _, name, fallback in self.slots)

    def fill(self, values: dict[str, bytes]) -> bytes:
        chunks = self.chunks.copy()
        for i, name, fallback in self.slots:
            chunks[i] = values.get(name) or fallback
        return b"".join(chunks)


class _BodyPart(_Part):
    """A text part of the body, filled already encoded: quoted-printable when that is no longer
    than base64 (mostly ASCII: every alert's HTML), its literal chunks encoded once here and only
    the values per message; else base64 of the whole part per message."""

    def __init__(self, frozen: str) -> None:
        super().__init__(frozen)
        literal = b"".join(c for c in self.chunks if c is not None)
        self.encoding = QUOTED_PRINTABLE if qp.worth_it(literal) else BASE64
        if self.encoding == QUOTED_PRINTABLE:
            last = len(self.chunks) - 1  # ends the part: no soft line break after it
            self.chunks = [
                c if c is None else qp.encode(c) if i == last else qp.piece(c)
                for i, c in enumerate(self.chunks)
            ]
            self.slots = [(i, name, qp.piece(fallback)) for i, name, fallback in self.slots]

    def encoded(self, values: dict[str, bytes]) -> bytes:
        """The part for one reader, in its transfer encoding (and relaxed canonical form)."""
        if self.encoding == BASE64:
            return b64_lines(self.fill(values))
        chunks = self.chunks.copy()
        done: dict[str, bytes] = {}  # the click token fills every tracked link: encoded once
        for i, name, fallback in self.slots:
            value = values.get(name)
            if not value:
                chunks[i] = fallback  # each slot its own: a field's fallback differs by place
                continue
            piece = done.get(name)
            if piece is None:
                piece = done[name] = qp.piece(value)
            chunks[i] = piece
        return b"".join(chunks)


@dataclass(frozen=True)
class AlertFrame:
    """What a skeleton is built from: an alert's identity and its frozen content and sender."""

    alert_id: int
    alert_uid: str
    subject: str
    html: str
    text: str
    meta: dict[str, Any]  # from, reply_to, list {id, slug, name}: see sending.frozen_meta
    language: str | None = None  # a version's language; None: the primary's (meta["language"])


class Skeleton:
    """The per-alert part of every message; `build` adds one recipient."""

    def __init__(self, frame: AlertFrame, settings: Settings) -> None:
        meta = frame.meta
        name, from_address = parseaddr(meta["from"])
        from_address = wire_address(from_address)
        self.domain = from_address.rpartition("@")[2] or "localhost"
        self.base_url = settings.base_url
        self.bounce_domain = settings.bounce_domain
        self.alert_uid = frame.alert_uid
        # The frozen layout's language; a language removed since then greets in the default.
        self.language = i18n.resolve(frame.language or meta.get("language"))
        greetings(self.language)
        self._secret = settings.secret_key.encode()
        self._click = delivery_tokens(CLICK, settings.secret_key)
        self._verp = delivery_tokens(VERP, settings.secret_key)
        self._mailto = delivery_tokens(MAILTO, settings.secret_key)
        self._html = _BodyPart(frame.html)
        self._text = _BodyPart(frame.text)
        self._alert_tag = hmac.new(self._secret, frame.alert_uid.encode(), "sha256").hexdigest()[
            :12
        ]
        boundary = f"=_clarion_{secrets.token_hex(12)}"
        lst = meta["list"]
        # A subject with personalisation fields is written per recipient, like To.
        self._subject = _Part(frame.subject, crlf=False)
        static = {
            "From": address_field(header_text(decoded(name)), from_address, len("From: ")),
            "Subject": (
                None
                if self._subject.personal
                else header_value(header_text(frame.subject), len("Subject: "))
            ),
            "Reply-To": reply_to_field(meta.get("reply_to")),
            "List-Id": address_field(
                header_text(lst["name"]),
                f"{header_text(lst['slug'])}.{self.bounce_domain}",
                len("List-Id: "),
            ),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Feedback-ID": header_text(f"{frame.alert_uid}:{lst['slug']}:{self.domain}"),
            "MIME-Version": "1.0",
            "Content-Type": f'multipart/alternative; boundary="{boundary}"',
            "Content-Language": self.language,
        }
        self._static = {k: v for k, v in static.items() if v is not None}
        # A raw UTF-8 address in a header (a Reply-To's local part) needs SMTPUTF8 for all.
        self._utf8_headers = not all(v.isascii() for v in self._static.values())
        per_recipient = (*_PER_RECIPIENT, "Subject") if self._subject.personal else _PER_RECIPIENT
        self._order = [h for h in SIGNED if h in self._static or h in per_recipient]
        self._canonical = {k: dkim.relaxed_header(k, v) for k, v in self._static.items()}
        self._signers = dkim.signers_for(settings, (*self._order, *OVERSIGNED))
        self._heads = part_heads(boundary, (self._text.encoding, self._html.encoding))
        self._second = (0, "")

    def _date(self) -> tuple[int, str]:
        # One formatting per second, not per message.
        now = int(time.time())
        if now != self._second[0]:
            self._second = (now, formatdate(now, usegmt=True)[:-3] + "+0000")
        return self._second

    def _personal_subject(self, plain: dict[str, bytes]) -> dict[str, str]:
        """The Subject field when it names the reader, else nothing (it is static)."""
        if not self._subject.personal:
            return {}
        subject = self._subject.fill(plain).decode()
        return {"Subject": header_value(header_text(subject), len("Subject: "))}

    def message_id(self, subscriber_uid: str) -> str:
        """Derived from alert and reader, so a resent copy keeps it; reveals neither."""
        mac = hmac.new(self._secret, f"{self.alert_uid}:{subscriber_uid}".encode(), "sha256")
        return f"<{self._alert_tag}.{mac.hexdigest()[:24]}@{self.domain}>"

    def verp_address(self, delivery_id: int) -> str:
        """The envelope sender of one delivery: b+<VERP token>@ the bounce domain."""
        return f"b+{self._verp.encode(delivery_id)}@{self.bounce_domain}"

    def envelope(self, delivery_id: int, email: str) -> tuple[str, str, bool]:
        """MAIL FROM (the VERP address), RCPT TO, and whether SMTPUTF8 is needed: only for a
        non-ASCII local part or header address (the parts are base64, the domain A-labels)."""
        rcpt = wire_address(email)
        return self.verp_address(delivery_id), rcpt, needs_smtputf8(rcpt) or self._utf8_headers

    def build(self, r: Recipient, envelope_from: str | None = None) -> OutgoingMessage:
        """The complete message for one recipient (`envelope_from`: its VERP address, if known)."""
        token = self._click.encode(r.delivery_id)
        unsubscribe = f"{self.base_url}/unsubscribe/" + tokens.unsubscribe_token(
            r.subscriber_uid, alert_uid=self.alert_uid
        )
        preferences = f"{self.base_url}/preferences/" + tokens.preferences_token(r.subscriber_uid)
        greeting = greeting_for(r.name, self.language)
        fields = reader_values(r.name)
        plain = {
            "greeting": greeting.encode(),
            "unsubscribe_url": unsubscribe.encode(),
            "preferences_url": preferences.encode(),
            "token": token.encode(),
            **{k: v.encode() for k, v in fields.items()},
        }
        escaped = {k: html.escape(v).encode() for k, v in fields.items()}
        body = encoded_body(
            self._heads,
            self._text.encoded(plain),
            self._html.encoded({**plain, **escaped, "greeting": html.escape(greeting).encode()}),
        )
        rcpt = wire_address(r.email)
        timestamp, date = self._date()
        message_id = self.message_id(r.subscriber_uid)
        varying = {
            "To": rcpt,
            **self._personal_subject(plain),
            "Date": date,
            "Message-ID": message_id,
            "List-Unsubscribe": (
                f"<{unsubscribe}>, "
                f"<mailto:unsubscribe+{self._mailto.encode(r.delivery_id)}@{self.bounce_domain}>"
            ),
        }
        head = signed_head(
            self._order,
            {**self._static, **varying},
            self._canonical,
            body,
            self._signers,
            timestamp,
        )
        data = head + body
        return OutgoingMessage(
            envelope_from=envelope_from or self.verp_address(r.delivery_id),
            rcpt=rcpt,
            data=data,
            message_id=message_id,
            smtputf8=needs_smtputf8(rcpt) or self._utf8_headers,
        )


class Skeletons:
    """An alert's skeletons: the primary's and one per frozen version in a language enabled now.

    A reader gets the version in their language, else the primary: one dict lookup per message.
    A language removed from CLARION_LANGUAGES since the freeze has no entry, so its readers get
    the primary.
    """

    def __init__(self, primary: Skeleton, versions: dict[str, Skeleton] | None = None) -> None:
        self.primary = primary
        self.versions = versions or {}

    @classmethod
    def build(
        cls, frame: AlertFrame, frozen_versions: dict[str, dict[str, str]], settings: Settings
    ) -> Skeletons:
        """The primary's skeleton from `frame`, and one for each version in `frozen_versions`."""
        enabled = i18n.enabled()
        versions = {
            code: Skeleton(
                AlertFrame(
                    alert_id=frame.alert_id,
                    alert_uid=frame.alert_uid,
                    subject=version["subject"],
                    html=version["html"],
                    text=version["text"],
                    meta=frame.meta,
                    language=code,
                ),
                settings,
            )
            for code, version in frozen_versions.items()
            if code in enabled
        }
        return cls(Skeleton(frame, settings), versions)

    def for_reader(self, language: str | None) -> Skeleton:
        """The skeleton of the version a reader of `language` gets."""
        return self.versions.get(language, self.primary)  # type: ignore[arg-type]
