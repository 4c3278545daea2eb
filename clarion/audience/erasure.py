"""Erasing a reader: everything that names them goes; figures and anonymous proof stay.

Deleted: the subscriber, their subscriptions, tags, deliveries, bounces with their evidence,
the stored inbound messages that name the address, and the answers kept for retried API
requests that show it. Anonymised: consent records (time,
action, lists and the keyed hash of the address stay as proof), signatures (the count stays,
the name, address and comment go), clicks and opens (the figures stay, the delivery goes),
webhook events (the address leaves their payloads; a `subscriber.erased` event is sent).
The suppression list keeps only the keyed hash, and gains an `erased` entry, so a re-import
or a sign-up cannot bring the address back.
"""

from __future__ import annotations

import json

from sqlalchemy import Text, cast, delete, or_, select, update
from sqlalchemy.orm import Session

from clarion import audit, outbox, throttle
from clarion.db import insert_for, utcnow
from clarion.models import (
    Bounce,
    Click,
    ConsentRecord,
    Delivery,
    IdempotentRequest,
    InboundMessage,
    NoticeMail,
    Open,
    Signature,
    Subscriber,
    Suppression,
    SuppressionReason,
    WebhookEvent,
)

ERASED_NAME = ""
ERASED_SIGNATURE = "erased:"  # the address of an erased signer: this and the signature's uid
INBOUND_CHUNK = 200


def erase_reader(session: Session, subscriber: Subscriber) -> dict[str, int]:
    """Erase one reader in the caller's transaction; returns how many rows each step touched."""
    email, sid = subscriber.email, subscriber.id
    key = throttle.address_key(email)
    deliveries = select(Delivery.id).where(Delivery.subscriber_id == sid).scalar_subquery()
    done = {
        "consent_records": session.execute(
            update(ConsentRecord)
            .where(ConsentRecord.subscriber_id == sid)
            .values(
                subscriber_id=None,
                email_hash=key,
                details={},
                ip=None,
                user_agent=None,
                confirm_ip=None,
                confirm_nonce=None,
                mail_due_at=None,  # no confirmation mail to an erased reader
            )
        ).rowcount,
        "signatures": _anonymise_signatures(session, sid, email),
        "clicks": session.execute(
            update(Click)
            .where(or_(Click.subscriber_id == sid, Click.delivery_id.in_(deliveries)))
            .values(subscriber_id=None, delivery_id=None)
        ).rowcount,
        "opens": session.execute(
            update(Open).where(Open.delivery_id.in_(deliveries)).values(delivery_id=None)
        ).rowcount,
        "bounces": session.execute(
            delete(Bounce).where(or_(Bounce.subscriber_id == sid, Bounce.email == email))
        ).rowcount,
        "inbound_messages": _forget_inbound(session, email),
        "notice_mails": session.execute(
            delete(NoticeMail).where(
                or_(NoticeMail.subscriber_id == sid, NoticeMail.email == email)
            )
        ).rowcount,
        "idempotent_requests": _forget_api_answers(session, email),
        "webhook_events": _scrub_webhook_events(session, key),
    }
    _suppress_by_hash(session, email, key)
    # The receivers learn of it by the keyed hash alone (and the id they were told before).
    outbox.record(session, "subscriber.erased", {"subscriber_id": sid, "email_hash": key})
    # Subscriptions, tags and deliveries go with the subscriber (ON DELETE CASCADE).
    session.execute(delete(Delivery).where(Delivery.subscriber_id == sid))
    session.execute(delete(Subscriber).where(Subscriber.id == sid))
    return done


def erase_self(session: Session, subscriber: Subscriber) -> dict[str, int]:
    """A reader erases themselves: audited for the owners with the keyed hash alone (and no IP
    address: the audit log keeps editors' addresses, never readers')."""
    audit.record(
        session,
        None,
        "subscriber.erase_self",
        f"subscriber:{subscriber.id}",
        email_hash=throttle.address_key(subscriber.email),
    )
    return erase_reader(session, subscriber)


def _anonymise_signatures(session: Session, sid: int, email: str) -> int:
    """Signatures keep their petition, time, confirmation, country and source; no person."""
    rows = session.execute(
        select(Signature.id, Signature.uid).where(
            or_(Signature.subscriber_id == sid, Signature.email == email)
        )
    ).all()
    for signature_id, uid in rows:
        session.execute(
            update(Signature)
            .where(Signature.id == signature_id)
            # Unique per petition, and plainly not an address.
            .values(
                email=f"{ERASED_SIGNATURE}{uid}",
                name=ERASED_NAME,
                comment="",
                subscriber_id=None,
                mail_due_at=None,  # no confirmation mail to an erased signer
            )
        )
    return len(rows)


def _forget_api_answers(session: Session, email: str) -> int:
    # A kept answer is JSON: the address as stored (PostgreSQL) or \u-escaped (SQLite's text).
    spelled = {email, json.dumps(email)[1:-1]}
    as_text = cast(IdempotentRequest.response, Text)
    matches = [as_text.contains(form, autoescape=True) for form in spelled]
    return session.execute(delete(IdempotentRequest).where(or_(*matches))).rowcount


def _scrub_webhook_events(session: Session, key: str) -> int:
    """Take the address out of the outbox: an event not yet delivered goes without it."""
    events = session.scalars(select(WebhookEvent).where(WebhookEvent.subject_key == key)).all()
    for event in events:
        event.payload = {k: v for k, v in (event.payload or {}).items() if k != "email"}
        event.subject_key = None
    session.flush()
    return len(events)


def _forget_inbound(session: Session, email: str) -> int:
    """Stored inbound messages (bounces, replies, mailto unsubscribes) that name the address."""
    needle = email.lower().encode()
    doomed = []
    last = 0
    while True:
        chunk = session.execute(
            select(InboundMessage.id, InboundMessage.raw)
            .where(InboundMessage.id > last)
            .order_by(InboundMessage.id)
            .limit(INBOUND_CHUNK)
        ).all()
        if not chunk:
            break
        last = chunk[-1][0]
        doomed.extend(i for i, raw in chunk if needle in bytes(raw).lower())
    if doomed:
        session.execute(delete(InboundMessage).where(InboundMessage.id.in_(doomed)))
    return len(doomed)


def _suppress_by_hash(session: Session, email: str, key: str) -> None:
    """Keep the address's suppression as a hash only, or add an `erased` one."""
    session.execute(
        update(Suppression)
        .where(or_(Suppression.email == email, Suppression.email_hash == key))
        .values(email=None, email_hash=key, detail="", bounce_id=None)
    )
    session.execute(
        insert_for(session)(Suppression.__table__)
        .values(
            email=None,
            email_hash=key,
            reason=SuppressionReason.ERASED.value,
            detail="",
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )
