"""The editors' view of subscribers: search and filters with keyset paging, detail, deletion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select
from sqlalchemy.orm import Session

from clarion import audit, throttle
from clarion.audience import erasure, subscribers
from clarion.errors import NotFound, ValidationError
from clarion.i18n import NA_, admin_gettext
from clarion.models import (
    Alert,
    Bounce,
    ConsentRecord,
    Delivery,
    Editor,
    MailingList,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
)
from clarion.paging import Page, keyset_page

SUPPRESSED = "suppressed"
STATUSES = (*[s.value for s in SubscriptionStatus], SUPPRESSED)
# Why an address is suppressed, in the editor's words (admin/_macros.html has the same).
SUPPRESSION_REASONS = {
    SuppressionReason.HARD_BOUNCE.value: NA_("hard bounce"),
    SuppressionReason.SOFT_BOUNCES.value: NA_("repeated soft bounces"),
    SuppressionReason.COMPLAINT.value: NA_("complaint"),
    SuppressionReason.MANUAL.value: NA_("suppressed by an editor"),
    SuppressionReason.ERASED.value: NA_("reader erased"),
}
DETAIL_LIMIT = 200


@dataclass(frozen=True)
class SubscriberFilter:
    """What the editor searches for: text in the address or name, a list, a status, a tag."""

    q: str = ""
    list_id: int | None = None
    status: str = ""
    tag_id: int | None = None

    def __post_init__(self) -> None:
        if self.status and self.status not in STATUSES:
            choices = ", ".join(STATUSES)
            raise ValidationError(
                {"status": admin_gettext("Choose one of: %(choices)s.", choices=choices)}
            )

    def as_args(self) -> dict[str, Any]:
        """The filter as query-string arguments (empty ones left out)."""
        args = {"q": self.q, "list": self.list_id, "status": self.status, "tag": self.tag_id}
        return {k: v for k, v in args.items() if v}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(q: str) -> ColumnElement[bool]:
    text = q.strip().lower()
    if "@" in text and " " not in text and text.count("@") == 1 and "." in text.split("@")[1]:
        # A whole address: the unique index answers at once.
        return Subscriber.email == text
    pattern = _like(text)
    return or_(
        Subscriber.email.like(pattern, escape="\\"),
        Subscriber.name_search.like(pattern, escape="\\"),
    )


def filtered(f: SubscriberFilter) -> tuple[Select[Any], tuple[ColumnElement[int], ...]]:
    """The subscribers matching `f`, and the columns to page by (first one orders).

    The most selective indexed filter drives the query (a list through its subscriptions, else
    a tag), and its subscriber_id is the paging key, so each page is an index range scan.
    """
    query = select(Subscriber)
    key: tuple[ColumnElement[int], ...] = (Subscriber.id,)
    if f.list_id:
        query = query.join(Subscription, Subscription.subscriber_id == Subscriber.id).where(
            Subscription.list_id == f.list_id
        )
        key = (Subscription.subscriber_id, Subscriber.id)
        if f.status and f.status != SUPPRESSED:
            query = query.where(Subscription.status == f.status)
    elif f.tag_id:
        query = query.join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id).where(
            SubscriberTag.tag_id == f.tag_id
        )
        key = (SubscriberTag.subscriber_id, Subscriber.id)
    if f.status and f.status != SUPPRESSED and not f.list_id:
        query = query.where(
            exists().where(
                Subscription.subscriber_id == Subscriber.id, Subscription.status == f.status
            )
        )
    if f.status == SUPPRESSED:
        query = query.where(exists().where(Suppression.email == Subscriber.email))
    if f.tag_id and f.list_id:
        query = query.where(
            exists().where(
                SubscriberTag.subscriber_id == Subscriber.id, SubscriberTag.tag_id == f.tag_id
            )
        )
    if f.q.strip():
        query = query.where(_search(f.q))
    return query, key


@dataclass
class Row:
    """One line of the subscriber list."""

    subscriber: Subscriber
    statuses: dict[str, str] = field(default_factory=dict)  # list name -> status
    tags: list[str] = field(default_factory=list)


def subscribers_page(
    session: Session,
    f: SubscriberFilter,
    after: int | None = None,
    before: int | None = None,
    columns: tuple[Any, ...] = (),
) -> Page[Any]:
    """A page of matching subscribers, newest first, without their lists and tags (for callers
    that show those in their own form, like the API: one query instead of three).

    `columns`: only these columns of each reader (`Subscriber.id` among them), as rows: a
    caller that only shows them skips building 50 ORM objects (~1 ms a page).
    """
    if columns and not f.as_args():  # everyone: the API's usual page, built once per process
        query, key = _everyone(columns)
        reuse: tuple[Any, ...] | None = ("everyone", columns)
    else:
        query, key = filtered(f)
        query = query.with_only_columns(*columns) if columns else query
        reuse = None
    key_of = (lambda r: r.id) if columns else (lambda s: s.id)
    return keyset_page(
        session, query, key, key_of, after=after, before=before, scalars=not columns, reuse=reuse
    )


_EVERYONE: dict[tuple[Any, ...], tuple[Select[Any], tuple[ColumnElement[int], ...]]] = {}


def _everyone(columns: tuple[Any, ...]) -> tuple[Select[Any], tuple[ColumnElement[int], ...]]:
    found = _EVERYONE.get(columns)
    if found is None:
        query, key = filtered(SubscriberFilter())
        if not any(getattr(c, "_propagate_attrs", None) for c in columns):
            # Table columns: what `filtered` gives for no filter (every reader, by id), but
            # without its ORM entity, so that the page runs on the Core path (~0.1 ms less).
            table = Subscriber.__table__
            query, key = select(*columns).select_from(table), (table.c.id,)
        else:
            query = query.with_only_columns(*columns)
        found = _EVERYONE[columns] = (query, key)
    return found


def page(
    session: Session,
    f: SubscriberFilter,
    after: int | None = None,
    before: int | None = None,
) -> Page[Row]:
    """A page of matching subscribers, newest first, with their lists and tags."""
    found = subscribers_page(session, f, after=after, before=before)
    ids = [s.id for s in found.items]
    rows = {s.id: Row(s) for s in found.items}
    if ids:
        for sub_id, name, status in session.execute(
            select(Subscription.subscriber_id, MailingList.name, Subscription.status)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id.in_(ids))
        ):
            rows[sub_id].statuses[name] = SubscriptionStatus(status).value
        for sub_id, name in session.execute(
            select(SubscriberTag.subscriber_id, Tag.name)
            .join(Tag, Tag.id == SubscriberTag.tag_id)
            .where(SubscriberTag.subscriber_id.in_(ids))
        ):
            rows[sub_id].tags.append(name)
    return Page([rows[i] for i in ids], after=found.after, before=found.before)


def matching_ids(f: SubscriberFilter) -> Select[Any]:
    """The ids of every subscriber matching `f`, for bulk operations."""
    query, _ = filtered(f)
    return query.with_only_columns(Subscriber.id)


@dataclass
class Detail:
    """Everything Clarion keeps about one subscriber, for the detail page."""

    subscriber: Subscriber
    subscriptions: list[tuple[Subscription, MailingList]]
    consents: list[ConsentRecord]
    deliveries: list[tuple[Delivery, Alert]]
    bounces: list[Bounce]
    suppression: Suppression | None
    tags: list[Tag]
    list_names: dict[int, str]
    # Counting now towards suppression, and the limit: filled by the bounce policy
    # (clarion.bounces.policy.soft_standing), which sits above the audience.
    soft_bounces: int = 0
    soft_limit: int = 0


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    """The subscriber with this id, or NotFound."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(admin_gettext("No such subscriber (perhaps deleted)."))
    return subscriber


def detail(session: Session, subscriber_id: int) -> Detail:
    """A subscriber with their consent records, subscriptions, deliveries and bounces."""
    s = get_subscriber(session, subscriber_id)
    newest = DETAIL_LIMIT
    return Detail(
        subscriber=s,
        subscriptions=list(
            session.execute(
                select(Subscription, MailingList)
                .join(MailingList, MailingList.id == Subscription.list_id)
                .where(Subscription.subscriber_id == s.id)
                .order_by(MailingList.name)
            )
        ),
        consents=list(
            session.scalars(
                select(ConsentRecord)
                .where(ConsentRecord.subscriber_id == s.id)
                .order_by(ConsentRecord.id.desc())
                .limit(newest)
            )
        ),
        deliveries=list(
            session.execute(
                select(Delivery, Alert)
                .join(Alert, Alert.id == Delivery.alert_id)
                .where(Delivery.subscriber_id == s.id)
                .order_by(Delivery.id.desc())
                .limit(newest)
            )
        ),
        bounces=list(
            session.scalars(
                select(Bounce)
                .where(or_(Bounce.subscriber_id == s.id, Bounce.email == s.email))
                .order_by(Bounce.id.desc())
                .limit(newest)
            )
        ),
        suppression=session.scalar(
            select(Suppression).where(subscribers.suppression_clause(s.email))
        ),
        tags=list(
            session.scalars(
                select(Tag)
                .join(SubscriberTag, SubscriberTag.tag_id == Tag.id)
                .where(SubscriberTag.subscriber_id == s.id)
                .order_by(Tag.name)
            )
        ),
        list_names=dict(session.execute(select(MailingList.id, MailingList.name)).all()),
    )


def delete_subscriber(
    session: Session, actor: Editor, subscriber: Subscriber, ip: str | None
) -> None:
    """Erase a subscriber and everything tied to them (owners); the audit keeps only a hash."""
    from clarion.editors import require

    require(actor, "delete_subscribers")
    audit.record(
        session,
        actor,
        "subscriber.delete",
        f"subscriber:{subscriber.id}",
        ip,
        # A keyed hash answers "was this address erased?" without keeping the address.
        email_hash=throttle.address_key(subscriber.email),
    )
    erasure.erase_reader(session, subscriber)


def lift_suppression(session: Session, actor: Editor, email: str, ip: str | None) -> None:
    """Let an address receive mail again (owners); its subscriptions stay as they are."""
    from clarion.editors import require

    require(actor, "lift_suppression")
    suppression = session.scalar(select(Suppression).where(subscribers.suppression_clause(email)))
    if suppression is None:
        raise NotFound(admin_gettext("This address is not suppressed."))
    audit.record(
        session,
        actor,
        "suppression.lift",
        f"suppression:{suppression.id}",
        ip,
        reason=suppression.reason.value,
        email_hash=throttle.address_key(email),
    )
    session.delete(suppression)
