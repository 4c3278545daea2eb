"""Subscribe, confirm, unsubscribe and preferences: the reader's side of Clarion."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from clarion import outbox, throttle, tokens
from clarion.addresses import normalise_email
from clarion.config import get_settings
from clarion.db import among_bound, among_values, utcnow
from clarion.delivery import owed
from clarion.errors import InvalidToken, NotFound, RateLimited, Suppressed, ValidationError
from clarion.i18n import N_
from clarion.i18n import gettext as _
from clarion.models import (
    ConsentRecord,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from clarion.models.subscribers import search_form
from clarion.series import entering

SOURCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_CONSENT_TEXT = (
    "I agree to receive the lists I ticked by email. I can leave at any time with one click."
)
DEFAULT_CONSENT_VERSION = "1"
NEUTRAL_REFUSAL = N_(
    "We cannot subscribe this address right now. If you think this is a mistake, please "
    "contact the people who run this list."
)


# How long the page a confirmation link leads to vouches for the mailbox: lists added in the
# preference centre meanwhile need no second mail. Long enough to look round, short enough
# that a forwarded or shared page is soon worthless.
MAILBOX_PROOF_SECONDS = 60 * 60


def mailbox_proven(subscriber: Subscriber, proof: str | None) -> bool:
    """True when `proof` is this reader's own, fresh from a confirmation."""
    return tokens.holds_mailbox_proof(subscriber.uid, proof, MAILBOX_PROOF_SECONDS)


def clean_source(raw: str | None) -> str | None:
    """A `?source=` code if it is well formed, else None (bad codes are dropped, not fatal)."""
    if raw and SOURCE_RE.fullmatch(raw):
        return raw
    return None


@dataclass(frozen=True)
class SubscribeRequest:
    """What a reader typed in the subscribe form, and where it came from."""

    email: str
    list_ids: Sequence[int]
    name: str = ""
    language: str = "en"
    ip: str | None = None
    user_agent: str | None = None
    source: str | None = None
    form: str = "subscribe"
    consent_text: str = DEFAULT_CONSENT_TEXT
    consent_version: str = DEFAULT_CONSENT_VERSION


@dataclass
class SubscribeOutcome:
    """What happened; deliberately the same shape whether or not the address was known."""

    consent_id: int | None = None  # set when a confirmation mail must be sent
    list_ids: list[int] = field(default_factory=list)
    # The reader, once found or created and known not to be suppressed: for callers that show
    # the reader anyway (the API), which need not look them up again. Pages never show it.
    reader: Reader | None = None


def public_lists(session: Session) -> list[MailingList]:
    """Lists a reader can choose on the public form, in a stable order."""
    return list(
        session.scalars(select(MailingList).where(MailingList.is_public).order_by(MailingList.name))
    )


def list_names(session: Session, list_ids: Iterable[int] | None) -> list[str]:
    """Names of the given lists (all when None), sorted, for pages and mails."""
    query = select(MailingList.name).order_by(MailingList.name)
    if list_ids is not None:
        query = query.where(MailingList.id.in_(list(list_ids)))
    return list(session.scalars(query))


def validate_request(session: Session, req: SubscribeRequest) -> tuple[str, list[int], Known]:
    """Check every field at once; ValidationError lists each problem by field. Also hands back
    what the database knows of the address (`Known`), read in the same round trip as the lists
    offered."""
    errors: dict[str, str] = {}
    email = ""
    try:
        email = normalise_email(req.email)
    except ValidationError as exc:
        errors.update(exc.errors)
    if len(req.name) > 200:
        errors["name"] = _("Please keep the name under %(max)s characters.", max=200)
    if req.language not in dict(get_settings().languages):
        errors["language"] = _("Please choose one of the languages offered.")
    known = _known(session, email or None)
    chosen = sorted({int(i) for i in req.list_ids})
    if not chosen:
        errors["lists"] = _("Please tick at least one list.")
    elif not set(chosen) <= known.offered.keys():
        errors["lists"] = _("Please choose only from the lists offered.")
    if errors:
        raise ValidationError(errors)
    return email, chosen, known


@dataclass(frozen=True)
class Known:
    """What a sign-up must know before it writes: the public lists (id: slug, in the order of
    their slugs), whether the address is suppressed, and the id of the reader who has it (None:
    a new address)."""

    offered: dict[int, str]
    suppressed: bool
    reader_id: int | None


_LIST, _SUPPRESSION, _READER = 1, 2, 3
# Three lookups in one round trip, built once per process. ORM attributes, so that the
# session flushes first as it did for each of the three selects.
_KNOWN = union_all(
    select(literal_column(str(_LIST)), MailingList.id, MailingList.slug).where(
        MailingList.is_public
    ),
    select(literal_column(str(_SUPPRESSION)), Suppression.id, null()).where(
        or_(
            Suppression.email == bindparam("email"),
            Suppression.email_hash == bindparam("email_hash"),
        )
    ),
    select(literal_column(str(_READER)), Subscriber.id, null()).where(
        Subscriber.email == bindparam("email")
    ),
)
_KNOWN = _KNOWN.order_by(_KNOWN.selected_columns.slug)


def _known(session: Session, email: str | None) -> Known:
    key = throttle.address_key(email) if email else None
    offered: dict[int, str] = {}
    suppressed, reader_id = False, None
    for kind, row_id, slug in session.execute(_KNOWN, {"email": email, "email_hash": key}):
        if kind == _LIST:
            offered[row_id] = slug
        elif kind == _SUPPRESSION:
            suppressed = True
        else:
            reader_id = row_id
    return Known(offered, suppressed, reader_id)


def suppression_clause(email: str) -> ColumnElement[bool]:
    """SQL condition: this address's suppression, by address or (erased readers) keyed hash."""
    return or_(Suppression.email == email, Suppression.email_hash == throttle.address_key(email))


def is_suppressed(session: Session, email: str) -> bool:
    """True when the address is on the global suppression list (by address or keyed hash)."""
    return session.scalar(select(Suppression.id).where(suppression_clause(email))) is not None


def suppressed_among(session: Session, emails: list[str]) -> set[str]:
    """Which of these addresses are suppressed (by address or keyed hash), in one query."""
    if not emails:
        return set()
    dialect = session.get_bind().dialect.name
    params, keys = suppressed_params(dialect, emails)
    rows = session.execute(suppressed_select(dialect), params)
    return suppressed_found(rows, keys)


# `suppressed_among` in its three parts, for a caller that sends the select within a statement
# of its own (the API: one round trip for a page's lists, tags and suppressions).


def suppressed_params(dialect: str, emails: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The parameters of `suppressed_select` for these addresses, and their keyed hashes."""
    wanted = set(emails)
    keys = {throttle.address_key(e): e for e in wanted}
    params = {
        "emails": among_values(dialect, Suppression.email, wanted),
        "hashes": among_values(dialect, Suppression.email_hash, keys),
    }
    return params, keys


def suppressed_found(rows: Iterable[Any], keys: dict[str, str]) -> set[str]:
    """The addresses that rows (email, email_hash) of `suppressed_select` say are suppressed."""
    wanted = set(keys.values())
    return {email if email in wanted else keys[key] for email, key in rows}


_SUPPRESSED_AMONG: dict[str, Select[Any]] = {}


def suppressed_select(dialect: str) -> Select[Any]:
    """(email, email_hash) of the suppressions among the parameters `emails` and `hashes`."""
    # Built once per dialect: a page of the API asks this on every request.
    found = _SUPPRESSED_AMONG.get(dialect)
    if found is None:
        # The table's columns: no ORM entity, so the statement runs on the Core path (cheaper
        # per execution; the rows are the same).
        c = Suppression.__table__.c
        found = _SUPPRESSED_AMONG[dialect] = select(c.email, c.email_hash).where(
            or_(
                among_bound(dialect, c.email, "emails"),
                among_bound(dialect, c.email_hash, "hashes"),
            )
        )
    return found


def subscribe(session: Session, req: SubscribeRequest) -> SubscribeOutcome:
    """Record a subscription request; pending lists get a consent record awaiting confirmation.

    The outcome never tells the caller whether the address was already known, subscribed or
    suppressed, so that the public form cannot be used to probe the list.
    """
    settings = get_settings()
    network = throttle.network_key(req.ip) if req.ip else None
    if network and not throttle.hit(settings.subscribe_limit_per_ip, "subscribe-ip", network):
        raise RateLimited(_("Too many sign-ups from your network. Please try again in a while."))
    email, list_ids, known = validate_request(session, req)
    key = throttle.mailbox_key(email)  # victim+1@, v.ictim@gmail: one inbox, one budget
    if not throttle.hit(settings.subscribe_limit_per_address, "subscribe-address", key):
        return SubscribeOutcome()  # silently: an attacker learns nothing, the victim gets nothing
    if known.suppressed:
        return SubscribeOutcome()
    subscriber = session.get(Subscriber, known.reader_id) if known.reader_id else None
    if subscriber is None:
        joined = tuple((i, slug) for i, slug in known.offered.items() if i in list_ids)
        reader, pending = _create_reader(session, email, req, joined), list_ids
    else:
        reader = Reader.of(subscriber)
        pending = _mark_pending(session, subscriber, list_ids, clean_source(req.source))
    if not pending:
        return SubscribeOutcome(reader=reader)
    # Asked before the record is written, which then says whether its mail is owed.
    mail = throttle.once_per(f"confirm:{key}", settings.confirm_resend_minutes * 60)
    consent_id = _insert_consent(session, reader.id, pending, req, "subscribe", mail)
    if not mail:
        return SubscribeOutcome(reader=reader)
    return SubscribeOutcome(consent_id=consent_id, list_ids=pending, reader=reader)


@dataclass(frozen=True)
class Reader:
    """A reader as a sign-up found or created them: what callers show, not an ORM object."""

    id: int
    email: str
    name: str | None
    language: str
    source: str | None
    created_at: datetime
    # A reader created just now: the lists they are pending on, (id, slug) in the order of
    # the slugs, for a caller that shows them (they have no tags, nor other lists, yet).
    # None for a reader who was known.
    joined: tuple[tuple[int, str], ...] | None = None

    @classmethod
    def of(cls, subscriber: Subscriber) -> Reader:
        """The reader of a loaded subscriber."""
        s = subscriber
        return cls(s.id, s.email, s.name, s.language, s.source, s.created_at)


# Core INSERTs built once per process: a sign-up is the API's busiest write, and an ORM add
# and flush cost several times the statement itself (bench/README.md, API, fourth pass).
_INSERT_READER = insert(Subscriber.__table__).returning(Subscriber.__table__.c.id)
_INSERT_SUBSCRIPTION = insert(Subscription.__table__)
_INSERT_CONSENT = insert(ConsentRecord.__table__).returning(ConsentRecord.__table__.c.id)


def _create_reader(
    session: Session, email: str, req: SubscribeRequest, joined: tuple[tuple[int, str], ...]
) -> Reader:
    """A new reader, pending on the `joined` lists (a new reader has no subscriptions to look
    up)."""
    name, source, now = req.name.strip() or None, clean_source(req.source), utcnow()
    values = {"email": email, "name": name, "language": req.language, "source": source}
    # What Subscriber's validator keeps in step with the name, which a Core INSERT skips.
    values.update(name_search=search_form(name), created_at=now, updated_at=now)
    reader_id = session.execute(_INSERT_READER, values).scalar_one()
    list_ids = sorted(i for i, _ in joined)
    session.execute(
        _INSERT_SUBSCRIPTION,
        [{"subscriber_id": reader_id, "list_id": i, "source": source} for i in list_ids],
    )
    return Reader(reader_id, email, name, req.language, source, now, joined)


def _subscriptions(session: Session, subscriber_id: int) -> dict[int, Subscription]:
    rows = session.scalars(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
    return {s.list_id: s for s in rows}


def _mark_pending(
    session: Session, subscriber: Subscriber, list_ids: Iterable[int], source: str | None
) -> list[int]:
    """Lists that need the reader's confirmation; already-subscribed lists are left alone."""
    existing = _subscriptions(session, subscriber.id)
    pending = []
    for list_id in list_ids:
        sub = existing.get(list_id)
        if sub is None:
            session.add(Subscription(subscriber_id=subscriber.id, list_id=list_id, source=source))
        elif sub.status == SubscriptionStatus.SUBSCRIBED:
            continue
        else:
            sub.status = SubscriptionStatus.PENDING
        pending.append(list_id)
    session.flush()
    return pending


def _consent_values(
    subscriber_id: int, list_ids: list[int], req: SubscribeRequest, action: str, mail: bool
) -> dict[str, Any]:
    return {
        # The confirmation mail owed (clarion.delivery.owed), unless the resend guard held it.
        "mail_due_at": owed.first_due(utcnow()) if mail else None,
        "subscriber_id": subscriber_id,
        "action": action,
        "list_ids": list_ids,
        "details": {"name": req.name.strip(), "language": req.language},
        "ip": req.ip,
        "user_agent": (req.user_agent or "")[:400] or None,
        "source": clean_source(req.source),
        "form": req.form[:64],
        "consent_text": req.consent_text,
        "consent_version": req.consent_version,
        "confirm_nonce": secrets.token_urlsafe(16),
    }


def _consent_record(
    session: Session,
    subscriber: Subscriber,
    list_ids: list[int],
    req: SubscribeRequest,
    action: str,
    mail: bool,
) -> ConsentRecord:
    record = ConsentRecord(**_consent_values(subscriber.id, list_ids, req, action, mail))
    session.add(record)
    session.flush()
    return record


def _insert_consent(
    session: Session,
    subscriber_id: int,
    list_ids: list[int],
    req: SubscribeRequest,
    action: str,
    mail: bool,
) -> int:
    """`_consent_record` as one Core INSERT: its id, no ORM object (the sign-up's)."""
    values = _consent_values(subscriber_id, list_ids, req, action, mail)
    return session.execute(_INSERT_CONSENT, values).scalar_one()


def confirm_token(consent: ConsentRecord) -> str:
    """The signed, expiring token of a confirmation link."""
    assert consent.confirm_nonce is not None
    return tokens.sign_timed(tokens.CONFIRM, consent.confirm_nonce)


def consent_for_token(session: Session, token: str) -> ConsentRecord:
    """The unconfirmed consent record behind a confirmation token, or InvalidToken."""
    max_age = get_settings().confirm_ttl_hours * 3600
    nonce = tokens.unsign_timed(tokens.CONFIRM, token, max_age=max_age)
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.confirm_nonce == nonce))
    if record is None:
        raise InvalidToken(_("This link is not valid."))
    if record.confirmed_at is not None:
        raise InvalidToken(_("This link was already used. Your subscription is confirmed."))
    return record


@dataclass
class ConfirmOutcome:
    """The lists a confirmation turned on, for the thank-you page, and the welcome mails queued
    as (alert id, delivery id) — the first steps of its series that go at once — to hand out
    after the commit (clarion.delivery.welcome.hand_out)."""

    subscriber: Subscriber
    list_ids: list[int]
    welcomes: list[tuple[int, int]] = field(default_factory=list)


def confirm(session: Session, token: str, ip: str | None) -> ConfirmOutcome:
    """Confirm a subscription once; the lists it names become subscribed."""
    record = consent_for_token(session, token)
    subscriber = session.get(Subscriber, record.subscriber_id)
    if subscriber is None:
        raise NotFound(_("This subscription no longer exists."))
    if is_suppressed(session, subscriber.email):
        raise Suppressed(_(NEUTRAL_REFUSAL))
    now = utcnow()
    # The conditional update is the claim: of two simultaneous clicks, one wins.
    claimed = session.execute(
        update(ConsentRecord)
        .where(ConsentRecord.id == record.id, ConsentRecord.confirmed_at.is_(None))
        .values(confirmed_at=now, confirm_ip=ip)
    ).rowcount
    if claimed != 1:
        raise InvalidToken(_("This link was already used. Your subscription is confirmed."))
    turned_on = _subscribe_pending(session, subscriber.id, record.list_ids, now)
    _apply_details(subscriber, record.details or {})
    session.flush()
    _confirmed_event(session, subscriber, turned_on)
    # The mail the resend guard held back duplicates of has been read and used: a list the
    # reader asks for next gets its own confirmation at once, not in a quarter of an hour.
    throttle.forget(f"confirm:{throttle.mailbox_key(subscriber.email)}")
    welcomes = entering.enter_joined(session, subscriber.id, turned_on)
    return ConfirmOutcome(subscriber=subscriber, list_ids=turned_on, welcomes=welcomes)


def _confirmed_event(session: Session, subscriber: Subscriber, list_ids: list[int]) -> None:
    # The address is the one thing a receiver cannot learn otherwise about a new reader.
    if list_ids:
        payload = {"subscriber_id": subscriber.id, "list_ids": sorted(list_ids)}
        outbox.record(session, "subscriber.confirmed", payload, email=subscriber.email)


def _subscribe_pending(session: Session, subscriber_id: int, list_ids: list[int], now) -> list[int]:
    subs = _subscriptions(session, subscriber_id)
    turned_on = []
    for list_id in list_ids:
        sub = subs.get(list_id)
        if sub is not None and sub.status == SubscriptionStatus.PENDING:
            sub.status = SubscriptionStatus.SUBSCRIBED
            sub.subscribed_at = now
            sub.unsubscribed_at = None
            turned_on.append(list_id)
    return turned_on


def _apply_details(subscriber: Subscriber, details: dict) -> None:
    if details.get("name"):
        subscriber.name = details["name"]
    if details.get("language"):
        subscriber.language = details["language"]


# --- Unsubscribe -------------------------------------------------------------------------


def subscriber_by_uid(session: Session, uid: str) -> Subscriber:
    """The subscriber with this public uid, or NotFound."""
    subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == uid))
    if subscriber is None:
        raise NotFound(_("This subscription no longer exists."))
    return subscriber


def scope_list_ids(session: Session, scope: tokens.UnsubscribeScope) -> list[int] | None:
    """The list ids a scope covers, or None for every list."""
    if scope.alert_uid:
        from clarion.models import Alert

        alert = session.scalar(select(Alert).where(Alert.uid == scope.alert_uid))
        return [int(i) for i in (alert.audience or {}).get("lists", [])] if alert else None
    return list(scope.list_ids) or None


def unsubscribe(
    session: Session,
    subscriber: Subscriber,
    list_ids: Iterable[int] | None,
    *,
    action: str = "unsubscribe",
    source: str = "",
    alert_id: int | None = None,
    ip: str | None = None,
) -> list[int]:
    """Leave the given lists (None: all); idempotent. Returns the lists actually left."""
    now = utcnow()
    wanted = None if list_ids is None else set(list_ids)
    left = []
    for sub in _subscriptions(session, subscriber.id).values():
        if wanted is not None and sub.list_id not in wanted:
            continue
        if sub.status != SubscriptionStatus.UNSUBSCRIBED:
            sub.status = SubscriptionStatus.UNSUBSCRIBED
            sub.unsubscribed_at = now
            left.append(sub.list_id)
    if left:
        session.add(
            ConsentRecord(
                subscriber_id=subscriber.id,
                action=action,
                list_ids=sorted(left),
                source=source[:64] or None,
                alert_id=alert_id,
                ip=ip,
            )
        )
        payload = {"subscriber_id": subscriber.id, "list_ids": sorted(left), "reason": action}
        outbox.record(session, "subscriber.unsubscribed", payload)
    session.flush()
    return left


def unsubscribe_many(
    session: Session,
    subscriber_ids: Sequence[int],
    list_ids: Sequence[int],
    *,
    action: str,
    source: str = "",
    alert_id: int | None = None,
) -> dict[int, list[int]]:
    """unsubscribe() for many readers at once, in a few statements: each leaves those of the
    lists they were on, with one consent record; returns the lists each actually left."""
    now = utcnow()
    where = (
        Subscription.subscriber_id.in_(subscriber_ids),
        Subscription.list_id.in_(list_ids),
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    left: dict[int, list[int]] = {}
    for subscriber_id, list_id in session.execute(
        select(Subscription.subscriber_id, Subscription.list_id).where(*where)
    ):
        left.setdefault(subscriber_id, []).append(list_id)
    if not left:
        return left
    session.execute(
        update(Subscription)
        .where(*where)
        .values(status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(ConsentRecord),
        [
            {"subscriber_id": sid, "action": action, "list_ids": sorted(lists),
             "source": source[:64] or None, "alert_id": alert_id, "created_at": now}
            for sid, lists in left.items()
        ],
    )  # fmt: skip
    outbox.record_many(
        session,
        "subscriber.unsubscribed",
        [
            {"subscriber_id": sid, "list_ids": sorted(lists), "reason": action}
            for sid, lists in left.items()
        ],
    )
    return left


def unsubscribe_by_token(session: Session, token: str, ip: str | None = None) -> list[int]:
    """The one-click unsubscribe: verify the token, then leave the lists it covers."""
    scope = tokens.read_unsubscribe_token(token)
    subscriber = subscriber_by_uid(session, scope.subscriber_uid)
    alert_id = None
    if scope.alert_uid:
        from clarion.models import Alert

        alert_id = session.scalar(select(Alert.id).where(Alert.uid == scope.alert_uid))
    return unsubscribe(
        session,
        subscriber,
        scope_list_ids(session, scope),
        source="one-click",
        alert_id=alert_id,
        ip=ip,
    )


# --- Preferences -------------------------------------------------------------------------


def subscriber_for_preferences(session: Session, token: str) -> Subscriber:
    """The subscriber behind a preference centre token."""
    return subscriber_by_uid(session, tokens.unsign(tokens.PREFERENCES, token))


def joined_list_ids(session: Session, subscriber_id: int) -> set[int]:
    """The lists a reader receives now (confirmed and not left)."""
    subs = _subscriptions(session, subscriber_id).values()
    return {s.list_id for s in subs if s.status == SubscriptionStatus.SUBSCRIBED}


@dataclass
class ListChoice:
    """One line of the preference centre: a list and the reader's standing on it."""

    mailing_list: MailingList
    status: SubscriptionStatus | None


def list_choices(session: Session, subscriber: Subscriber) -> list[ListChoice]:
    """Public lists, plus private lists the reader is on, with the reader's status on each."""
    subs = _subscriptions(session, subscriber.id)
    lists = {ml.id: ml for ml in public_lists(session)}
    for sub in subs.values():
        lists.setdefault(sub.list_id, sub.mailing_list)
    ordered = sorted(lists.values(), key=lambda ml: ml.name.lower())
    return [ListChoice(ml, subs[ml.id].status if ml.id in subs else None) for ml in ordered]


@dataclass
class PreferencesOutcome:
    """What a preferences update did, for the message shown to the reader; `joined` lists were
    turned on at once (the reader had just confirmed), with their welcome mails to hand out."""

    left: list[int]
    consent_id: int | None
    pending: list[int]
    joined: list[int] = field(default_factory=list)
    welcomes: list[tuple[int, int]] = field(default_factory=list)


def update_preferences(
    session: Session,
    subscriber: Subscriber,
    *,
    wanted_list_ids: Iterable[int],
    name: str,
    language: str,
    ip: str | None,
    user_agent: str | None,
    mailbox_proven: bool = False,
) -> PreferencesOutcome:
    """Apply the preference centre form; joining a list needs a fresh confirmation, unless the
    reader has just proven the mailbox by confirming (`mailbox_proven`)."""
    errors = {}
    if language not in dict(get_settings().languages):
        errors["language"] = _("Please choose one of the languages offered.")
    if len(name) > 200:
        errors["name"] = _("Please keep the name under %(max)s characters.", max=200)
    choices = {c.mailing_list.id: c for c in list_choices(session, subscriber)}
    wanted = {int(i) for i in wanted_list_ids}
    if not wanted <= set(choices):
        errors["lists"] = _("Please choose only from the lists offered.")
    if errors:
        raise ValidationError(errors)
    subscriber.name = name.strip() or None
    subscriber.language = language
    on = {i for i, c in choices.items() if c.status == SubscriptionStatus.SUBSCRIBED}
    left = (
        unsubscribe(session, subscriber, on - wanted, source="preferences", ip=ip)
        if on - wanted
        else []
    )
    joining = sorted(i for i in wanted if choices[i].status != SubscriptionStatus.SUBSCRIBED)
    if joining and mailbox_proven:
        joined, welcomes = join_confirmed(
            session, subscriber, joining, ip=ip, user_agent=user_agent
        )
        return PreferencesOutcome(left, None, [], joined=joined, welcomes=welcomes)
    consent_id = None
    if joining:
        consent_id = request_resubscribe(session, subscriber, joining, ip=ip, user_agent=user_agent)
    return PreferencesOutcome(left=left, consent_id=consent_id, pending=joining)


def join_confirmed(
    session: Session,
    subscriber: Subscriber,
    list_ids: list[int],
    *,
    ip: str | None,
    user_agent: str | None,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Join lists at once for a reader who has just confirmed from their mailbox; the consent
    record is written confirmed. Returns the lists joined and the welcome mails queued."""
    if is_suppressed(session, subscriber.email):
        raise Suppressed(_(NEUTRAL_REFUSAL))
    pending = _mark_pending(session, subscriber, list_ids, source=None)
    req = SubscribeRequest(
        email=subscriber.email,
        list_ids=pending,
        name=subscriber.name or "",
        language=subscriber.language,
        ip=ip,
        user_agent=user_agent,
        form="preferences-after-confirm",
    )
    consent = _consent_record(session, subscriber, pending, req, "subscribe", mail=False)
    now = utcnow()
    consent.confirmed_at, consent.confirm_ip, consent.confirm_nonce = now, ip, None
    joined = _subscribe_pending(session, subscriber.id, pending, now)
    session.flush()
    _confirmed_event(session, subscriber, joined)
    return joined, entering.enter_joined(session, subscriber.id, joined)


def request_resubscribe(
    session: Session,
    subscriber: Subscriber,
    list_ids: list[int],
    *,
    ip: str | None,
    user_agent: str | None,
) -> int | None:
    """Put lists back to pending and open a consent record; suppressed addresses are refused."""
    if is_suppressed(session, subscriber.email):
        raise Suppressed(_(NEUTRAL_REFUSAL))
    pending = _mark_pending(session, subscriber, list_ids, source=None)
    req = SubscribeRequest(
        email=subscriber.email,
        list_ids=pending,
        name=subscriber.name or "",
        language=subscriber.language,
        ip=ip,
        user_agent=user_agent,
        form="preferences",
    )
    key = throttle.mailbox_key(subscriber.email)
    mail = throttle.once_per(f"confirm:{key}", get_settings().confirm_resend_minutes * 60)
    consent = _consent_record(session, subscriber, pending, req, "resubscribe", mail)
    return consent.id if mail else None
