"""Polling a bounce mailbox over IMAP (imapclient), for deployments whose bounces land in one.

Each message is stored (committed, de-duplicated by mailbox, UIDVALIDITY and UID) and
processed; only then is it moved to the `processed` folder or deleted. A message whose
processing fails stays in the mailbox and is tried again at the next poll, up to
`inbound.MAX_ATTEMPTS` times; after that it stays for a person to look at.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field

from imapclient import IMAPClient
from sqlalchemy import select

from clarion.bounces import inbound
from clarion.config.bounces import ImapMailbox
from clarion.db import session_scope
from clarion.models import InboundMessage
from clarion.redisconn import get_redis

log = logging.getLogger(__name__)
BATCH = 200  # messages per poll; the next poll takes the rest
TIMEOUT = 30.0


@dataclass
class PollResult:
    """What one poll did, by IMAP UID."""

    processed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # already tried MAX_ATTEMPTS times


def poll(mailbox: ImapMailbox, ssl_context: ssl.SSLContext | None = None) -> PollResult:
    """Fetch, store and process the mailbox's messages; move or delete the processed ones."""
    result = PollResult()
    context = ssl_context or (ssl.create_default_context() if mailbox.ssl else None)
    with IMAPClient(
        mailbox.host, mailbox.port, ssl=mailbox.ssl, ssl_context=context, timeout=TIMEOUT
    ) as client:
        client.login(mailbox.username, mailbox.password)
        if mailbox.move_to and not client.folder_exists(mailbox.move_to):
            client.create_folder(mailbox.move_to)
        info = client.select_folder(mailbox.folder)
        validity = int(info[b"UIDVALIDITY"])
        for uid in client.search(["UNDELETED"])[:BATCH]:
            outcome = _take(client, mailbox, validity, uid)
            getattr(result, outcome).append(uid)
        if result.processed and not mailbox.move_to:
            client.expunge()
    return result


def _take(client: IMAPClient, mailbox: ImapMailbox, validity: int, uid: int) -> str:
    """Store and process one message; dispose of it only once processed."""
    fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
    raw = fetched.get(b"BODY[]")
    if not isinstance(raw, bytes):
        return "failed"
    ref = f"imap:{mailbox.name}:{validity}:{uid}"
    with session_scope() as session:
        stored = inbound.store(session, "imap", raw, source_ref=ref) or session.scalar(
            select(InboundMessage).where(InboundMessage.source_ref == ref)
        )
        assert stored is not None
        inbound_id, done = stored.id, stored.processed_at is not None
        attempts = stored.attempts
    if not done:
        if attempts >= inbound.MAX_ATTEMPTS:
            return "skipped"
        try:
            inbound.process(inbound_id)
        except Exception:
            log.exception("inbound message %s (IMAP UID %s) failed; it stays", inbound_id, uid)
            return "failed"
    _dispose(client, mailbox, uid)
    return "processed"


def _dispose(client: IMAPClient, mailbox: ImapMailbox, uid: int) -> None:
    if mailbox.move_to is None:
        client.delete_messages([uid])
    elif client.has_capability("MOVE"):
        client.move([uid], mailbox.move_to)
    else:
        client.copy([uid], mailbox.move_to)
        client.delete_messages([uid])
        client.expunge()


def poll_once(mailbox: ImapMailbox, lock_seconds: int = 600) -> PollResult | None:
    """Poll unless another worker is polling the same mailbox right now (None then)."""
    key = f"clarion:imap-poll:{mailbox.name}"
    client = get_redis()
    if not client.set(key, 1, nx=True, ex=lock_seconds):
        return None
    try:
        return poll(mailbox)
    finally:
        client.delete(key)
