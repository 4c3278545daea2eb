"""The local mail catcher: a loopback SMTP sink that keeps every message in a Maildir."""

from __future__ import annotations

import email
import email.policy
import mailbox
import threading
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

ENVELOPE_FROM = "X-Catcher-Mail-From"
ENVELOPE_TO = "X-Catcher-Rcpt-To"


class MaildirHandler:
    """aiosmtpd handler: stores each accepted message with its envelope in a Maildir."""

    def __init__(self, directory: Path) -> None:
        directory.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(directory, create=True)
        for sub in ("tmp", "new", "cur"):  # create=True skips these when the folder exists
            (directory / sub).mkdir(exist_ok=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        prefix = (
            f"{ENVELOPE_FROM}: {envelope.mail_from}\r\n"
            f"{ENVELOPE_TO}: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode("utf-8", "surrogateescape")
        with self._lock:
            self.maildir.add(prefix + content)
        return "250 2.0.0 Message accepted for delivery"


def start_catcher(directory: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the catcher in a background thread; call .stop() on the result to end it."""
    controller = Controller(
        MaildirHandler(directory),
        hostname=host,
        port=port,
        enable_SMTPUTF8=True,
        data_size_limit=50 * 1024 * 1024,
    )
    controller.start()
    return controller


@dataclass
class CaughtMessage:
    """One message in the catcher's Maildir, as the Outbox shows it."""

    key: str
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage
    received: datetime | None

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else None

    @property
    def text(self) -> str | None:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else None

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(k, str(v)) for k, v in self.message.items() if not k.startswith("X-Catcher-")]


def _parse(key: str, raw: bytes) -> CaughtMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    received = None
    if msg.get("Date"):
        try:
            received = parsedate_to_datetime(str(msg["Date"]))
        except (TypeError, ValueError):
            received = None
    return CaughtMessage(
        key=key,
        envelope_from=str(msg.get(ENVELOPE_FROM, "")),
        envelope_to=[a.strip() for a in str(msg.get(ENVELOPE_TO, "")).split(",") if a.strip()],
        message=msg,
        received=received,
    )


def list_messages(directory: Path, limit: int = 200) -> list[CaughtMessage]:
    """The newest messages first."""
    if not directory.exists():
        return []
    box = mailbox.Maildir(directory, create=False)
    keyed = []
    for key in box.iterkeys():
        path = Path(box._path) / box._lookup(key)
        keyed.append((path.stat().st_mtime_ns, key))
    keyed.sort(reverse=True)
    return [_parse(key, box.get_bytes(key)) for _, key in keyed[:limit]]


def get_message(directory: Path, key: str) -> CaughtMessage | None:
    """One message by its Maildir key, or None."""
    box = mailbox.Maildir(directory, create=False)
    try:
        return _parse(key, box.get_bytes(key))
    except KeyError:
        return None


def clear(directory: Path) -> int:
    """Delete every caught message; returns how many there were."""
    if not directory.exists():
        return 0
    box = mailbox.Maildir(directory, create=False)
    keys = list(box.iterkeys())
    for key in keys:
        box.discard(key)
    return len(keys)
