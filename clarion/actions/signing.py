"""Signing a petition: one signature per address, confirmation when asked, prefill for readers.

What an anonymous signer is told never depends on whether the address had signed before: a
public form must not reveal that someone signed a petition about political prisoners.

A reader who came from a link in their mail is recognised, but the page shows only a masked
address, and only while the mail is younger than `recognise_days`. A link can be forwarded or
shared, so whoever holds it must not sign as the reader unseen: the signature counts at once
only while the mail is fresh (sent less than `reader_sign_hours` ago: the reader token is
bound to that delivery, so to this alert and this petition), when action alerts are read and
forwarding is rarest; later it waits for a confirmation mail to the reader's own address.
Only a fresh reader is told plainly that they had already signed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clarion import i18n, outbox, throttle, tokens
from clarion.actions import petitions
from clarion.addresses import mask_email, normalise_email
from clarion.audience import subscribers
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.delivery import owed
from clarion.errors import InvalidToken, NotFound, RateLimited, ValidationError
from clarion.i18n import gettext as _
from clarion.models import Delivery, Petition, Signature, Subscriber
from clarion.series import entering
from clarion.tokens import CLICK, delivery_tokens
from clarion.tracking import readers

SIGN_LIMIT_PER_IP = "120/hour"  # generous: a rally on one network signs together
MAX_COMMENT = 2000
MAX_NAME = 200


@lru_cache(maxsize=1)
def countries(lang: str | None = None) -> tuple[tuple[str, str], ...]:
    """ISO 3166 countries as (code, name) in `lang` (default: the current one), sorted by name."""
    return i18n.country_names(lang or i18n.current())


@dataclass(frozen=True)
class Prefill:
    """The reader a valid token speaks for, the alert, and whether they may sign unconfirmed.

    `email` never goes to a page: show `masked`."""

    email: str
    alert_id: int
    subscriber_id: int
    fresh: bool
    language: str | None = None  # the reader's: the page speaks it

    @property
    def masked(self) -> str:
        return mask_email(self.email)


def reader_prefill(session: Session, petition: Petition, token: str | None) -> Prefill | None:
    """The reader a token recognises on this petition; None if absent, forged, expired, or the
    mail is older than the recognition period."""
    if not token:
        return None
    try:
        reader = readers.read_reader_token(token, petition.slug)
        delivery_id = delivery_tokens(CLICK).decode(reader.delivery_token)
    except InvalidToken:
        return None
    row = session.execute(
        select(
            Delivery.alert_id,
            Delivery.sent_at,
            Subscriber.id,
            Subscriber.email,
            Subscriber.language,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id == delivery_id)
    ).first()
    settings = get_settings()
    if row is None or row.sent_at is None:
        return None
    age = utcnow() - row.sent_at
    if age > timedelta(days=settings.recognise_days):
        return None
    fresh = age <= timedelta(hours=settings.reader_sign_hours)
    return Prefill(
        email=row.email,
        alert_id=row.alert_id,
        subscriber_id=row.id,
        fresh=fresh,
        language=row.language,
    )


def reader_signed_at(session: Session, petition: Petition, reader: Prefill | None):
    """When the recognised reader's counted signature was made, or None; said only to a fresh
    reader (as sign() does), since a link can be forwarded and signing must stay private."""
    if reader is None or not reader.fresh:
        return None
    return session.scalar(
        select(Signature.created_at).where(
            Signature.petition_id == petition.id,
            Signature.email == reader.email,
            Signature.confirmed_at.is_not(None),
        )
    )


@dataclass(frozen=True)
class SignRequest:
    """What the sign form sent, where it came from, and the reader it vouches for."""

    name: str
    email: str
    country: str = ""
    comment: str = ""
    source: str | None = None
    list_ids: Sequence[int] = ()
    ip: str | None = None
    user_agent: str | None = None
    reader: Prefill | None = None
    language: str | None = None  # the page's; the confirmation mail is written in it


class SignStatus(enum.StrEnum):
    """What signing did, as far as the signer may be told."""

    SIGNED = "signed"  # counted now
    CHECK_INBOX = "check_inbox"  # a confirmation mail decides
    ALREADY_SIGNED = "already_signed"  # only ever said to a verified reader


@dataclass
class SignOutcome:
    """The result, and the mails to send once the transaction has committed."""

    status: SignStatus
    signed_at: datetime | None = None
    confirm_signature_id: int | None = None
    list_consent_id: int | None = None
    lists_pending: list[int] = field(default_factory=list)
    lists_note: str = ""


def _validate(session: Session, req: SignRequest) -> tuple[str, str, str]:
    errors: dict[str, str] = {}
    email = ""
    try:
        email = normalise_email(req.email)
    except ValidationError as exc:
        errors.update(exc.errors)
    name = " ".join(req.name.split())
    if not name:
        errors["name"] = _("Please enter your name.")
    elif len(name) > MAX_NAME:
        errors["name"] = _("Please keep the name under %(max)s characters.", max=MAX_NAME)
    country = req.country.strip().upper()
    if country and country not in dict(countries()):
        errors["country"] = _("Please choose a country from the list, or none.")
    if len(req.comment) > MAX_COMMENT:
        errors["comment"] = _("Please keep the comment under %(max)s characters.", max=MAX_COMMENT)
    if req.list_ids:
        offered = {ml.id for ml in subscribers.public_lists(session)}
        if not set(req.list_ids) <= offered:
            errors["lists"] = _("Please choose only from the lists offered.")
    if errors:
        raise ValidationError(errors)
    return email, name, country


def sign(session: Session, petition: Petition, req: SignRequest) -> SignOutcome:
    """Sign once per address; ValidationError for bad input, NotFound when closed."""
    if not petitions.is_accepting(petition):
        raise NotFound(_("This petition is closed and no longer takes signatures."))
    if req.ip and not throttle.hit(SIGN_LIMIT_PER_IP, "sign-ip", throttle.network_key(req.ip)):
        raise RateLimited(_("Too many signatures from your network. Please try again in a while."))
    if req.reader is not None and not req.email.strip():
        req = replace(req, email=req.reader.email)  # signing as the recognised reader
    email, name, country = _validate(session, req)
    as_reader = req.reader is not None and req.reader.email == email
    verified = as_reader and req.reader is not None and req.reader.fresh
    # A recognised reader whose mail is no longer fresh confirms by mail, whatever the petition.
    must_confirm = petition.require_confirmation or (as_reader and not verified)
    existing = _existing(session, petition.id, email)
    if existing is None:
        fields = _Fields(email, name, country, verified, must_confirm)
        existing, outcome = _insert(session, petition, req, fields)
    else:
        outcome = _again(session, petition, existing, verified, must_confirm)
    if req.list_ids:
        _opt_in(session, req, email, name, outcome)
    return outcome


def _existing(session: Session, petition_id: int, email: str) -> Signature | None:
    return session.scalar(
        select(Signature).where(Signature.petition_id == petition_id, Signature.email == email)
    )


@dataclass(frozen=True)
class _Fields:
    """The checked signature and whether it counts now."""

    email: str
    name: str
    country: str
    verified: bool
    must_confirm: bool


def _insert(
    session: Session, petition: Petition, req: SignRequest, f: _Fields
) -> tuple[Signature, SignOutcome]:
    now = utcnow()
    email, verified = f.email, f.verified
    confirmed = verified or not f.must_confirm
    # Asked before the row is written, which then says whether its confirmation mail is owed.
    mail = not confirmed and _may_mail(petition.id, email)
    signature = Signature(
        petition_id=petition.id,
        email=email,
        name=f.name,
        country=f.country,
        comment=req.comment.strip(),
        language=i18n.resolve(req.language),
        source=subscribers.clean_source(req.source),
        # The alert the reader came from, even if they then typed another address.
        alert_id=req.reader.alert_id if req.reader else None,
        subscriber_id=req.reader.subscriber_id if verified and req.reader else None,
        created_at=now,
        confirmed_at=now if confirmed else None,
        mail_due_at=owed.first_due(now) if mail else None,
    )
    try:
        with session.begin_nested():
            session.add(signature)
    except IntegrityError:
        # Signed at the same moment from another request: that one counts, this one is moot.
        concurrent = _existing(session, petition.id, email)
        if concurrent is None:
            raise
        # If this request took the mailbox's mail, it mails the signature that won.
        again = _again(session, petition, concurrent, verified, f.must_confirm, mail_taken=mail)
        return concurrent, again
    petitions.forget_count(petition.id)
    if confirmed:
        _signed_event(session, signature)
        return signature, SignOutcome(SignStatus.SIGNED, signed_at=now)
    return signature, SignOutcome(
        SignStatus.CHECK_INBOX, confirm_signature_id=signature.id if mail else None
    )


def _again(
    session: Session,
    petition: Petition,
    signature: Signature,
    verified: bool,
    must_confirm: bool,
    mail_taken: bool = False,
) -> SignOutcome:
    if verified:
        if signature.confirmed_at is None:  # the reader's token proves the address now
            _mark_confirmed(session, signature)
        return SignOutcome(SignStatus.ALREADY_SIGNED, signed_at=signature.created_at)
    if signature.confirmed_at is not None:
        return SignOutcome(SignStatus.CHECK_INBOX if must_confirm else SignStatus.SIGNED)
    # Unconfirmed: send the confirmation again, at most once in a while per mailbox.
    if not (mail_taken or _may_mail(petition.id, signature.email)):
        return SignOutcome(SignStatus.CHECK_INBOX)
    signature.mail_due_at = owed.first_due(utcnow())
    return SignOutcome(SignStatus.CHECK_INBOX, confirm_signature_id=signature.id)


def _may_mail(petition_id: int, email: str) -> bool:
    """True at most once per resend interval per petition and mailbox (the first mail counts).

    Keyed on the mailbox, not the address: `victim+1@`, `victim+2@` and `v.ictim@gmail.com`
    are new signatures each, but one inbox, which gets one confirmation mail.
    """
    key = f"signature-confirm:{petition_id}:{throttle.mailbox_key(email)}"
    return throttle.once_per(key, get_settings().confirm_resend_minutes * 60)


def _mark_confirmed(session: Session, signature: Signature) -> bool:
    # A conditional update: of two simultaneous confirmations exactly one wins.
    claimed = session.execute(
        update(Signature)
        .where(Signature.id == signature.id, Signature.confirmed_at.is_(None))
        .values(confirmed_at=utcnow())
        .execution_options(synchronize_session="fetch")
    ).rowcount
    petitions.forget_count(signature.petition_id)
    if claimed == 1:
        _signed_event(session, signature)
    return claimed == 1


def _signed_event(session: Session, signature: Signature) -> None:
    """Tell the webhooks a signature now counts (the address: a signer may be no reader)."""
    payload = {
        "petition_id": signature.petition_id,
        "signature_id": signature.id,
        "subscriber_id": signature.subscriber_id,
        "country": signature.country or None,
    }
    outbox.record(session, "petition.signed", payload, email=signature.email)
    entering.enter_signed(session, signature)


def _opt_in(
    session: Session, req: SignRequest, email: str, name: str, outcome: SignOutcome
) -> None:
    """Join the ticked lists through the normal double opt-in; never a condition of signing."""
    request = subscribers.SubscribeRequest(
        email=email,
        list_ids=list(req.list_ids),
        name=name,
        language=i18n.resolve(req.language),
        ip=req.ip,
        user_agent=req.user_agent,
        source=req.source,
        form="petition",
    )
    try:
        with session.begin_nested():
            result = subscribers.subscribe(session, request)
    except RateLimited:
        outcome.lists_note = _("We could not add you to the lists right now; please try later.")
        return
    outcome.list_consent_id = result.consent_id
    outcome.lists_pending = result.list_ids


def confirm_token(signature: Signature) -> str:
    """The signed, expiring token of a signature's confirmation link."""
    return tokens.sign_timed(tokens.SIGNATURE_CONFIRM, signature.uid)


def signature_for_token(session: Session, petition: Petition, token: str) -> Signature:
    """The signature a confirmation token names (on this petition), or InvalidToken."""
    max_age = get_settings().confirm_ttl_hours * 3600
    uid = tokens.unsign_timed(tokens.SIGNATURE_CONFIRM, token, max_age=max_age)
    signature = session.scalar(
        select(Signature).where(Signature.uid == uid, Signature.petition_id == petition.id)
    )
    if signature is None:
        raise InvalidToken(_("This link is not valid."))
    return signature


def confirm(session: Session, petition: Petition, token: str) -> Signature:
    """Count a signature whose address was confirmed; idempotent for the same link."""
    signature = signature_for_token(session, petition, token)
    if signature.confirmed_at is None:
        if not petitions.is_accepting(petition):
            raise NotFound(_("This petition closed before the signature was confirmed."))
        _mark_confirmed(session, signature)
    return signature
