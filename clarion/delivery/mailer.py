"""Transactional mail (confirmations, notices): MIME with the standard library, sent over SMTP."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from clarion.alerts.rendering import RenderedMail
from clarion.config import Settings, SmtpServer, get_settings
from clarion.db import utcnow
from clarion.inputs import header_text


def ascii_address(email: str) -> str:
    """The address with its domain in IDNA, so that ASCII-only servers can route it."""
    local, _, domain = email.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return email


def build_transactional(
    to: str,
    mail: RenderedMail,
    *,
    settings: Settings | None = None,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message from Clarion's sender to one address."""
    settings = settings or get_settings()
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ascii_address(to)
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
    """Send one message over the first configured server; SMTP errors propagate for retry."""
    settings = settings or get_settings()
    rcpt = parseaddr(str(msg["To"]))[1]
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    # Internationalised local parts need SMTPUTF8; everything else stays plain ASCII SMTP.
    options = ["SMTPUTF8"] if not rcpt.isascii() else []
    with open_smtp(settings.smtp_servers[0]) as conn:
        conn.sendmail(settings.from_address, [rcpt], data, mail_options=options)
