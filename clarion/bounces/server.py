"""The bounce server: an SMTP receiver (aiosmtpd) for the bounce domain.

It accepts only `b+<VERP token>@` (bounces of an alert's delivery or of a transactional mail)
and `unsubscribe+<mailto token>@` (List-Unsubscribe mailto:) recipients whose token verifies
for that purpose (a click token from a mail's links is neither);
anything else is refused with 550 5.1.1.
A message is stored durably (committed) before the 250 reply, or refused with 451 so that
the sending server keeps it and tries again; processing is then queued, and the periodic
sweep catches any message whose queueing failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from clarion.bounces import inbound
from clarion.config import Settings
from clarion.db import session_scope
from clarion.errors import InvalidToken
from clarion.tokens import MAILTO, NOTICE_VERP, VERP, delivery_tokens

log = logging.getLogger(__name__)
LOCAL_PART = re.compile(r"(b|unsubscribe)\+([a-z0-9]{26})", re.IGNORECASE)

# Store a message with its envelope recipients and return its id, committed.
Store = Callable[[bytes, list[str]], int]


def store_committed(raw: bytes, rcpt_tos: list[str]) -> int:
    """Store an arriving message and commit: only then may the server answer 250."""
    with session_scope() as session:
        message = inbound.store(session, "smtp", raw, rcpt_tos)
        assert message is not None  # no source_ref, so never a repeat
        return message.id


class BounceHandler:
    """aiosmtpd handler: checks recipients, stores each message, then queues its processing."""

    def __init__(
        self,
        bounce_domain: str,
        secret: str,
        store: Store = store_committed,
        queue: Callable[[int], None] = inbound.enqueue,
    ) -> None:
        self.domain = bounce_domain.lower()
        self.codecs = {
            "b": (delivery_tokens(VERP, secret), delivery_tokens(NOTICE_VERP, secret)),
            "unsubscribe": (delivery_tokens(MAILTO, secret),),
        }
        self.store = store
        self.queue = queue

    def accepts(self, address: str) -> bool:
        """Whether an address is ours: b+ or unsubscribe+ with a genuine token of its kind."""
        local, _, domain = address.rpartition("@")
        match = LOCAL_PART.fullmatch(local)
        if domain.lower() != self.domain or match is None:
            return False
        for codec in self.codecs[match.group(1).lower()]:
            try:
                codec.decode(match.group(2).lower())
            except InvalidToken:
                continue
            return True
        return False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if not self.accepts(address):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            inbound_id = await loop.run_in_executor(
                None, self.store, content, list(envelope.rcpt_tos)
            )
        except Exception:
            log.exception("could not store an inbound message; asked the sender to retry")
            return "451 4.3.0 Could not store the message now; please try again later"
        try:
            await loop.run_in_executor(None, self.queue, inbound_id)
        except Exception:
            log.exception("stored inbound message %s; the sweep will process it", inbound_id)
        return "250 2.0.0 Stored"


def start_bounce_server(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    store: Store = store_committed,
    queue: Callable[[int], None] = inbound.enqueue,
) -> Controller:
    """Start the bounce server in a background thread; call .stop() on the result to end it."""
    handler = BounceHandler(settings.bounce_domain, settings.secret_key, store, queue)
    controller = Controller(
        handler,
        hostname=host or settings.bounces.smtp_host,
        port=port or settings.bounces.smtp_port,
        enable_SMTPUTF8=True,
        data_size_limit=settings.bounces.smtp_max_bytes,
        ident="Clarion bounce server",
    )
    controller.start()
    return controller
