"""Transactional mail (confirmations, notices): MIME with the standard library, sent over SMTP."""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from clarion.addresses import needs_smtputf8, wire_address
from clarion.alerts.rendering import RenderedMail
from clarion.config import Settings, SmtpServer, get_settings
from clarion.db import utcnow
from clarion.delivery.headers import address_field, header_value
from clarion.errors import Unsendable
from clarion.inputs import header_text


class _WordsPolicy(EmailPolicy):
    """The SMTP policy, but Subject and one-address fields with a non-ASCII text folded into
    encoded-words of at most 75 characters (the standard library writes 76, folded badly)."""

    def fold(self, name: str, value: object) -> str:
        return self._words(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: object) -> bytes:
        words = self._words(name, value)
        return words.encode("ascii") if words else super().fold_binary(name, value)

    def _words(self, name: str, value: object) -> str | None:
        text, used, low = str(value), len(name) + 2, name.lower()
        if text.isascii() or self.utf8:
            return None
        if low == "subject":
            return f"{name}: {header_value(text, used, self.linesep)}{self.linesep}"
        addresses = getattr(value, "addresses", ())
        if low in ("from", "to", "reply-to", "cc") and len(addresses) == 1:
            one = addresses[0]
            if one.addr_spec.isascii():
                field = address_field(one.display_name, one.addr_spec, used, self.linesep)
                return f"{name}: {field}{self.linesep}"
        return None


# Headers in RFC 2047 words and CRLF line ends; the SMTPUTF8 form writes UTF-8 as it is, for
# an address whose local part no encoding may stand in for (RFC 2047 5, RFC 6532).
ASCII_POLICY = _WordsPolicy(linesep="\r\n")
UTF8_POLICY = policy.SMTPUTF8.clone(linesep="\r\n")


def build_transactional(
    to: str,
    mail: RenderedMail,
    *,
    settings: Settings | None = None,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message from Clarion's sender to one address."""
    settings = settings or get_settings()
    rcpt = wire_address(to)
    msg = EmailMessage(policy=UTF8_POLICY if needs_smtputf8(rcpt) else ASCII_POLICY)
    msg["From"] = settings.mail_from
    msg["To"] = rcpt
    msg["Subject"] = header_text(mail.subject)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=settings.from_address.rpartition("@")[2])
    # Tells vacation responders not to answer (RFC 3834).
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (extra_headers or {}).items():
        msg[name] = header_text(value)
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    # After the parts: setting content clears every Content-* header of the message.
    msg["Content-Language"] = mail.language
    return msg


def sender_address(settings: Settings | None = None) -> str:
    """The display form of the configured sender."""
    settings = settings or get_settings()
    name, addr = parseaddr(settings.mail_from)
    return formataddr((name, addr)) if name else addr


def open_smtp(server: SmtpServer, timeout: float = 30) -> smtplib.SMTP:
    """An authenticated SMTP connection honouring the server's TLS mode."""
    if server.tls == "ssl":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            server.host, server.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = smtplib.SMTP(server.host, server.port, timeout=timeout)
        if server.tls == "starttls":
            conn.starttls(context=ssl.create_default_context())
    if server.username:
        conn.login(server.username, server.password or "")
    return conn


def send_transactional(msg: EmailMessage, settings: Settings | None = None) -> None:
    """Send one message over the first configured server; SMTP errors propagate for retry,
    Unsendable when the server cannot carry the address (retrying would not help)."""
    settings = settings or get_settings()
    rcpt = parseaddr(str(msg["To"]))[1]
    smtputf8 = needs_smtputf8(rcpt)
    with open_smtp(settings.smtp_servers[0]) as conn:
        conn.ehlo_or_helo_if_needed()
        if smtputf8 and not conn.has_extn("smtputf8"):
            raise Unsendable(
                f"{rcpt}: the address has a non-ASCII local part and the mail server does "
                "not offer SMTPUTF8 (RFC 6531); send through a server that does"
            )
        data, options = wire_form(msg, conn.has_extn("8bitmime"))
        conn.sendmail(settings.from_address, [rcpt], data, mail_options=options)


def wire_form(msg: EmailMessage, offers_8bitmime: bool) -> tuple[bytes, list[str]]:
    """The message's bytes and MAIL FROM parameters: SMTPUTF8 only when a header needs it,
    BODY=8BITMIME whenever the bytes are 8-bit; 7-bit parts for a server without 8BITMIME."""
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    options = ["SMTPUTF8"] if msg.policy.utf8 else []
    if data.isascii():
        return data, options
    if not offers_8bitmime and not msg.policy.utf8:
        seven = msg.policy.clone(linesep="\r\n", cte_type="7bit")
        return msg.as_bytes(policy=seven), options
    return data, [*options, "BODY=8BITMIME"]
