"""Transactional mail (confirmations, a reader's data link, test sends): the way out of alerts.

Each mail is built by the alerts' message builder (`messages`: base64 parts, encoded-words,
every configured DKIM key) and leaves with a VERP envelope sender `b+<token>@` the bounce
domain, the token naming its `NoticeMail` row (purpose NOTICE_VERP: unguessable, and worthless
as a delivery's token). A bounce of it, returned later or refused at once, reaches the bounce
policy against that address; a suppressed address gets nothing, whatever the mail.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from email.utils import formatdate, parseaddr

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clarion import i18n, throttle
from clarion.addresses import wire_address, without_addresses
from clarion.alerts import identity
from clarion.alerts.rendering import RenderedMail
from clarion.bounce_classify import classify_status
from clarion.config import Settings, get_settings
from clarion.db import utcnow
from clarion.delivery import dkim
from clarion.delivery.batchrun import Verdict, verdict
from clarion.delivery.headers import address_field, decoded, header_value
from clarion.delivery.messages import (
    OVERSIGNED,
    alternative_body,
    part_heads,
    reply_to_field,
    signed_head,
)
from clarion.delivery.refusals import Finding, RefusalPolicy
from clarion.delivery.smtpclient import Reply, SmtpClient, SmtpConnectionError
from clarion.errors import Unsendable
from clarion.inputs import header_text
from clarion.models import BounceClass, NoticeMail, Suppression
from clarion.tokens import NOTICE_VERP, delivery_tokens

log = logging.getLogger(__name__)

# Signed header fields in h= order (those a mail lacks are left out); OVERSIGNED names the
# address and list fields once more, so one added after signing breaks the signature.
SIGNED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "Auto-Submitted",
    "X-Clarion-Test",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
)


class NoticeDeferred(Exception):
    """The mail did not leave this time (a 4xx, our sending refused, the server away): the
    task retries it later."""


# What the tasks retry on.
RETRYABLE = (NoticeDeferred, SmtpConnectionError, OSError)


@dataclass(frozen=True)
class Notice:
    """One transactional mail to one address."""

    kind: str  # confirm, signature_confirm, your_data, test
    to: str
    mail: RenderedMail
    subscriber_id: int | None = None
    sender: str | None = None  # "Name <address>"; the campaign's default sender when None
    reply_to: str | None = None
    test: bool = False  # marked X-Clarion-Test


@dataclass(frozen=True)
class Sent:
    """What became of a notice: sent, suppressed (nothing went out) or refused (a bounce)."""

    status: str
    reason: str = ""
    record: NoticeMail | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"


@dataclass(frozen=True)
class Built:
    """A notice's envelope and bytes."""

    envelope_from: str
    rcpt: str
    data: bytes
    message_id: str
    smtputf8: bool


def verp_address(notice_id: int, settings: Settings) -> str:
    """The envelope sender of one notice: b+<NOTICE_VERP token>@ the bounce domain."""
    token = delivery_tokens(NOTICE_VERP, settings.secret_key).encode(notice_id)
    return f"b+{token}@{settings.bounce_domain}"


def build(notice: Notice, envelope_from: str, settings: Settings | None = None) -> Built:
    """The complete signed message of a notice (the same builder and signer as alerts)."""
    settings = settings or get_settings()
    name, from_address = parseaddr(header_text(notice.sender or settings.mail_from))
    from_address = wire_address(from_address)
    domain = from_address.rpartition("@")[2] or "localhost"
    rcpt = wire_address(notice.to)
    boundary = f"=_clarion_{secrets.token_hex(12)}"
    now = int(utcnow().timestamp())
    values = {
        "From": address_field(decoded(name), from_address, len("From: ")),
        "To": rcpt,
        "Subject": header_value(header_text(notice.mail.subject), len("Subject: ")),
        "Date": formatdate(now, usegmt=True)[:-3] + "+0000",
        "Message-ID": f"<{secrets.token_hex(16)}@{domain}>",
        # Tells vacation responders not to answer (RFC 3834).
        "Auto-Submitted": "auto-generated",
        "MIME-Version": "1.0",
        "Content-Type": f'multipart/alternative; boundary="{boundary}"',
        "Content-Language": i18n.resolve(notice.mail.language),
    }
    reply_to = reply_to_field(notice.reply_to)
    if reply_to:
        values["Reply-To"] = reply_to
    if notice.test:
        values["X-Clarion-Test"] = "yes"
    order = [h for h in SIGNED if h in values]
    body = alternative_body(part_heads(boundary), _crlf(notice.mail.text), _crlf(notice.mail.html))
    signers = dkim.signers_for(settings, (*order, *OVERSIGNED))
    head = signed_head(order, values, {}, body, signers, now)
    utf8 = not all(v.isascii() for v in values.values())
    return Built(envelope_from, rcpt, head + body, values["Message-ID"], utf8)


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def suppression(session: Session, email: str) -> Suppression | None:
    """The address's entry on the suppression list (by address or, erased, keyed hash)."""
    return session.scalar(
        select(Suppression).where(
            or_(Suppression.email == email, Suppression.email_hash == throttle.address_key(email))
        )
    )


def send(
    session: Session,
    notice: Notice,
    refusals: RefusalPolicy | None,
    settings: Settings | None = None,
) -> Sent:
    """Send one notice over the first configured server, unless the address is suppressed.

    A final refusal of the recipient goes to `refusals` (the bounce policy) as a bounce of
    this address; without one (a test send) it is only returned. NoticeDeferred (and
    SmtpConnectionError) when trying again later may help; Unsendable when the server cannot
    carry the address. The record of the mail is committed before it is sent; the caller
    commits what follows.
    """
    settings = settings or get_settings()
    blocked = suppression(session, notice.to)
    if blocked is not None:
        since = f"{blocked.created_at:%Y-%m-%d}" if blocked.created_at else "?"
        # No address in the log (the suppression's detail may quote it): the kind and reader
        # say which mail; the reader's page in the admin shows the bounce and its evidence.
        log.warning(
            "%s mail not sent (reader %s): the address is suppressed (%s since %s)",
            notice.kind,
            notice.subscriber_id,
            blocked.reason.value,
            since,
        )
        detail = f": {blocked.detail}" if blocked.detail else ""
        return Sent("suppressed", f"the address is suppressed ({blocked.reason.value}{detail})")
    if notice.sender is None:  # confirmations and other notices come from the campaign
        notice = replace(notice, sender=identity.load(session).sender)
    record = NoticeMail(kind=notice.kind, email=notice.to, subscriber_id=notice.subscriber_id)
    session.add(record)
    # Committed before the mail leaves: a bounce to its VERP address can come back before this
    # call returns, and no transaction (on SQLite: the database's one write lock) is held
    # through the SMTP conversation. The callers have only read so far.
    session.commit()
    message = build(notice, verp_address(record.id, settings), settings)
    server = settings.smtp_servers[0]
    client = SmtpClient(
        server.host,
        server.port,
        tls=server.tls,
        username=server.username,
        password=server.password,
        timeout=30,
    )
    client.connect()
    try:
        if not client.carries(message.smtputf8):
            raise Unsendable(
                f"{notice.to}: the address has a non-ASCII local part and the mail server "
                "does not offer SMTPUTF8 (RFC 6531); send through a server that does"
            )
        outcome = client.send(message.envelope_from, message.rcpt, message.data, message.smtputf8)
    finally:
        client.close()
    record.reply = str(outcome.reply)[:2000]
    kind = verdict(outcome)
    where = f"{server.host}:{server.port}"
    if kind == Verdict.SENT:
        record.sent_at = utcnow()
        record.message_id = message.message_id
        return Sent("sent", record=record)
    if kind != Verdict.FAIL:  # 4xx, or our sending refused: the operator can fix that
        if kind == Verdict.POLICY:
            # The reply may quote the recipient: the log says which kind of mail, not to whom.
            reply = without_addresses(str(outcome.reply))
            log.error("%s mail refused by %s: %s", notice.kind, where, reply)
        raise NoticeDeferred(f"{where} answered {outcome.reply}")
    _bounced(session, notice, record, outcome.reply, refusals)
    return Sent("refused", f"{where} answered {outcome.reply}", record)


def _bounced(
    session: Session,
    notice: Notice,
    record: NoticeMail,
    reply: Reply,
    refusals: RefusalPolicy | None,
) -> None:
    """A final refusal at RCPT: the same bounce as one returned later, for this address."""
    if refusals is None:
        return
    klass, reason = classify_status(reply.status, reply.text, str(reply.code))
    if klass is not BounceClass.HARD:
        klass = BounceClass.SOFT  # a final refusal that proves nothing is counted, not ignored
    refusals.bounced(
        session,
        Finding(
            classification=klass,
            status=reply.status or str(reply.code),
            reason=f"{notice.kind} mail refused: {reason}: {reply}",
            email=record.email,
            source="delivery",
            subscriber_id=record.subscriber_id,
            evidence=str(reply).encode(),
        ),
    )
