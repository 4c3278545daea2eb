"""Inbound messages: stored durably on arrival, then processed once into bounces, complaints and
unsubscribes, whichever path they came by (bounce server, IMAP mailbox, provider webhook).

A returned mail (bounce server, IMAP) acts only when it came back to the VERP token of a
delivery we sent, or of a transactional mail (a confirmation: `NoticeMail`, whose address the
report is then about): that token is only ever in the envelope, so no one who merely saw a mail (a
forwarded copy, a shared link) can forge a bounce that suppresses its reader. Anything else
mailed to us (a report naming only an address, our Message-ID or mailto token in a quoted
original) is recorded as nothing. Provider webhooks are authenticated by their signatures, so
for them the reader is also found by our headers in the original and by the address itself.
A message to `unsubscribe+<mailto token>@` (the mailto: of our List-Unsubscribe header)
unsubscribes that delivery's reader from the alert's lists.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clarion import jobqueue
from clarion.audience import subscribers
from clarion.bounce_classify import BounceClass, RecipientReport, Report, classify_message
from clarion.bounce_classify.report import CLASS_PRIORITY
from clarion.bounces.numbers import BouncePolicy, load_policy
from clarion.bounces.policy import act
from clarion.bounces.webhooks import events
from clarion.db import session_scope, utcnow
from clarion.delivery.refusals import Finding
from clarion.errors import InvalidToken
from clarion.models import Alert, Delivery, InboundMessage, NoticeMail, Subscriber
from clarion.tokens import MAILTO, NOTICE_VERP, VERP, UnsubscribeScope, delivery_tokens

PROCESS_TASK = "tasks.bounces.process_inbound"
MAIL_SOURCES = ("smtp", "imap")
MAX_ATTEMPTS = 5
SWEEP_AFTER = timedelta(minutes=2)  # leave fresh messages to the task queued on arrival
UNSUBSCRIBE_ADDRESS = re.compile(r"(?<![\w.+-])unsubscribe\+([a-z0-9]{26})@", re.IGNORECASE)
# Headers of a mailbox copy that name the address it was delivered to.
DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


def store(
    session: Session,
    source: str,
    raw: bytes,
    envelope_to: Sequence[str] = (),
    source_ref: str | None = None,
) -> InboundMessage | None:
    """Add a message for processing (flushed; the caller commits before acknowledging it).

    None when a message with the same `source_ref` is already stored: a repeat.
    """
    if source_ref and session.scalar(
        select(InboundMessage.id).where(InboundMessage.source_ref == source_ref)
    ):
        return None
    message = InboundMessage(
        source=source, raw=raw, envelope_to="\n".join(envelope_to), source_ref=source_ref
    )
    session.add(message)
    session.flush()
    return message


def body_ref(source: str, raw: bytes) -> str:
    """A de-duplication reference for a body that may be sent again (webhook retries)."""
    return f"{source}:{hashlib.sha256(raw).hexdigest()}"


def enqueue(inbound_id: int) -> None:
    """Ask a worker to process a stored message (after the commit that stored it)."""
    jobqueue.enqueue(PROCESS_TASK, inbound_id)


def process(inbound_id: int) -> str:
    """Process one stored message once; returns what it did. A failure is recorded (and
    raised) so that the sweep tries again, up to MAX_ATTEMPTS times."""
    try:
        with session_scope() as session:
            return _process(session, inbound_id)
    except Exception as exc:
        with session_scope() as session:
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id)
                .values(attempts=InboundMessage.attempts + 1, error=repr(exc)[:2000])
            )
        raise


def _process(session: Session, inbound_id: int) -> str:
    now = utcnow()
    # The conditional update claims the message: of two workers, the second finds it done
    # (PostgreSQL makes it wait for the first one's commit; SQLite has one writer at a time).
    claimed = session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id, InboundMessage.processed_at.is_(None))
        .values(processed_at=now, attempts=InboundMessage.attempts + 1, error="")
    ).rowcount
    message = session.get(InboundMessage, inbound_id)
    if message is None:
        return "gone"
    if not claimed:
        return message.outcome or "already processed"
    outcome = handle(session, message, load_policy(session))
    message.outcome = outcome[:300]
    return outcome


def handle(session: Session, message: InboundMessage, policy: BouncePolicy) -> str:
    """Act on one message according to its source; returns what it did."""
    if message.source in MAIL_SOURCES:
        envelope = [a for a in message.envelope_to.split("\n") if a]
        tokens = unsubscribe_tokens(message.raw, envelope)
        if tokens:
            return mailto_unsubscribe(session, message.raw, envelope, tokens)
        report = classify_message(message.raw, envelope)
        return _act_on(session, [(report, message.raw)], message.source, policy)
    return _act_on(session, events.reports(message.source, message.raw), message.source, policy)


def _act_on(
    session: Session, found: Iterable[tuple[Report, bytes]], source: str, policy: BouncePolicy
) -> str:
    done = []
    for report, evidence in found:
        for finding in findings(session, report, source, evidence):
            bounce = act(session, finding, policy)
            about = bounce.email or "(no address named)"
            done.append(f"{bounce.classification.value} {about}: {bounce.action}")
    return "; ".join(done) or "nothing to record: no reader of ours is named"


# --- Who the report is about ----------------------------------------------------------------


@dataclass(frozen=True)
class _Reader:
    subscriber: Subscriber
    delivery: Delivery | None = None


def findings(session: Session, report: Report, source: str, evidence: bytes) -> list[Finding]:
    """The report matched to our readers: by VERP token; for an authenticated provider's
    report also by our headers in the original, then by address."""
    delivery = _delivery_by_tokens(session, report.verp_tokens, VERP)
    if delivery is None:
        notice = _notice_by_tokens(session, report.verp_tokens)
        if notice is not None:
            about = _about(report.recipients, notice.email, report.classification)
            return [_notice_finding(about, notice, source, evidence)]
    if delivery is None and source in MAIL_SOURCES:
        return []  # not returned to a delivery's envelope: anyone could have written it
    if delivery is None:
        delivery = _delivery_by_headers(session, report.original_headers)
    if delivery is None:
        notice = _notice_by_message_id(session, report.original_headers)
        if notice is not None:
            about = _about(report.recipients, notice.email, report.classification)
            return [_notice_finding(about, notice, source, evidence)]
    if delivery is not None:
        reader = session.get(Subscriber, delivery.subscriber_id)
        if reader is None:
            return []
        # Clarion sends one recipient per message: the report is about this delivery's reader,
        # whatever address a forwarding or an alias made the failure name.
        about = _about(report.recipients, reader.email, report.classification)
        return [_finding(about, _Reader(reader, delivery), source, evidence)]
    found = []
    for recipient in report.recipients:
        if recipient.recipient is None:
            # A complaint naming no one (addresses redacted) is still on record, about no reader.
            if recipient.classification is BounceClass.COMPLAINT:
                found.append(_unnamed(recipient, source, evidence))
            continue
        reader = session.scalar(select(Subscriber).where(Subscriber.email == recipient.recipient))
        if reader is not None:
            found.append(_finding(recipient, _Reader(reader), source, evidence))
    return found


def _about(
    recipients: Sequence[RecipientReport], email: str, klass: BounceClass
) -> RecipientReport:
    """The part of a report about `email`, else its most consequential part."""
    for recipient in recipients:
        if recipient.recipient == email:
            return recipient
    ranked = sorted(recipients, key=lambda r: CLASS_PRIORITY.index(r.classification))
    if ranked:
        return ranked[0]
    return RecipientReport(email, klass, "", "not a bounce: nothing in it to act on", "")


def _unnamed(recipient: RecipientReport, source: str, evidence: bytes) -> Finding:
    """A report about an unknown recipient: recorded, acted on for no one."""
    return Finding(
        classification=recipient.classification,
        status=recipient.status,
        reason=recipient.reason,
        email="",
        source=source,
        evidence=evidence,
    )


def _finding(recipient: RecipientReport, reader: _Reader, source: str, evidence: bytes) -> Finding:
    reason = recipient.reason
    if recipient.diagnostic and recipient.diagnostic not in reason:
        reason = f"{reason}: {recipient.diagnostic}"
    delivery = reader.delivery
    return Finding(
        classification=recipient.classification,
        status=recipient.status,
        reason=reason,
        email=reader.subscriber.email,
        source=source,
        subscriber_id=reader.subscriber.id,
        delivery_id=delivery.id if delivery else None,
        alert_id=delivery.alert_id if delivery else None,
        evidence=evidence,
    )


def _notice_by_tokens(session: Session, tokens: Iterable[str]) -> NoticeMail | None:
    codec = delivery_tokens(NOTICE_VERP)
    for token in tokens:
        try:
            notice = session.get(NoticeMail, codec.decode(token.lower()))
        except InvalidToken:
            continue
        if notice is not None:
            return notice
    return None


def _notice_by_message_id(session: Session, headers: dict[str, str]) -> NoticeMail | None:
    """A transactional mail an authenticated provider reports by the Message-ID we gave it."""
    message_id = headers.get("Message-ID", "").strip()
    if not message_id:
        return None
    wanted = message_id if message_id.startswith("<") else f"<{message_id}>"
    return session.scalar(
        select(NoticeMail)
        .where(NoticeMail.message_id == wanted)
        .order_by(NoticeMail.id.desc())
        .limit(1)
    )


def _notice_finding(
    recipient: RecipientReport, notice: NoticeMail, source: str, evidence: bytes
) -> Finding:
    """A transactional mail came back: about the address it went to (one recipient a mail),
    and the reader it was for, if any; no delivery, no alert."""
    reason = f"{notice.kind} mail: {recipient.reason}"
    if recipient.diagnostic and recipient.diagnostic not in reason:
        reason = f"{reason}: {recipient.diagnostic}"
    return Finding(
        classification=recipient.classification,
        status=recipient.status,
        reason=reason,
        email=notice.email,
        source=source,
        subscriber_id=notice.subscriber_id,
        evidence=evidence,
    )


def _delivery(session: Session, token: str, purpose: str) -> Delivery | None:
    try:
        delivery_id = delivery_tokens(purpose).decode(token.lower())
    except InvalidToken:
        return None
    return session.get(Delivery, delivery_id)


def _delivery_by_tokens(session: Session, tokens: Iterable[str], purpose: str) -> Delivery | None:
    for token in tokens:
        delivery = _delivery(session, token, purpose)
        if delivery is not None:
            return delivery
    return None


def _delivery_by_headers(session: Session, headers: dict[str, str]) -> Delivery | None:
    """Our List-Unsubscribe mailto carries the delivery token; our Message-ID is on the row."""
    tokens = UNSUBSCRIBE_ADDRESS.findall(headers.get("List-Unsubscribe", ""))
    delivery = _delivery_by_tokens(session, tokens, MAILTO)
    message_id = headers.get("Message-ID", "").strip()
    if delivery is None and message_id:
        wanted = message_id if message_id.startswith("<") else f"<{message_id}>"
        delivery = session.scalar(
            select(Delivery)
            .where(Delivery.message_id == wanted)
            .order_by(Delivery.id.desc())
            .limit(1)
        )
    return delivery


# --- mailto: unsubscribe --------------------------------------------------------------------


def unsubscribe_tokens(raw: bytes, envelope_to: Sequence[str]) -> list[str]:
    """Mailto tokens of the unsubscribe addresses a message was sent to. The envelope says
    it for the bounce server; a mailbox copy (IMAP) says it in its delivery headers."""
    values = list(envelope_to)
    if not values:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        values = [str(v) for name in DELIVERED_TO for v in headers.get_all(name) or []]
    return list(dict.fromkeys(t.lower() for v in values for t in UNSUBSCRIBE_ADDRESS.findall(v)))


def mailto_unsubscribe(
    session: Session, raw: bytes, envelope_to: Sequence[str], tokens: Sequence[str]
) -> str:
    """Unsubscribe each named delivery's reader from its alert's lists, unless the message is
    an automatic one (a bounce, an out-of-office reply): only a person's mail unsubscribes."""
    report = classify_message(raw, envelope_to)
    if report.recipients:
        return f"ignored: an automatic message ({report.classification.value}) to unsubscribe+"
    done = []
    for token in tokens:
        delivery = _delivery(session, token, MAILTO)
        reader = session.get(Subscriber, delivery.subscriber_id) if delivery else None
        alert = session.get(Alert, delivery.alert_id) if delivery else None
        if reader is None or alert is None:
            continue
        scope = UnsubscribeScope(reader.uid, alert_uid=alert.uid)
        left = subscribers.unsubscribe(
            session,
            reader,
            subscribers.scope_list_ids(session, scope),
            source="mailto",
            alert_id=alert.id,
        )
        done.append(f"{reader.email} left {len(left)} list(s)")
    return "; ".join(done) or "nothing to do: no reader of ours is named"


# --- Sweep ----------------------------------------------------------------------------------


def sweep(limit: int = 500) -> list[int]:
    """Queue processing again for stored messages that are still unprocessed (a lost task, a
    worker that died, a failure to retry); returns their ids."""
    cutoff = utcnow() - SWEEP_AFTER
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(InboundMessage.id)
                .where(
                    InboundMessage.processed_at.is_(None),
                    InboundMessage.attempts < MAX_ATTEMPTS,
                    InboundMessage.received_at < cutoff,
                )
                .order_by(InboundMessage.id)
                .limit(limit)
            )
        )
    for inbound_id in ids:
        enqueue(inbound_id)
    return ids
