"""Re-permission: a "stay subscribed?" mail, and the readers who let its deadline pass.

An editor writes it for inactive readers (the segments' `inactive` condition) with a deadline
in days (Alert.stay_days). Its "Yes, keep me" button goes through the click path, which adds
the reader's stay token; the stay page asks for one more press (a POST), so that a scanner
following the link stays nobody, and records a Stay. Once the deadline has passed, the beat
(remove_due) unsubscribes, from the lists the mail went to, each reader it was sent to who
neither pressed stay nor clicked anything since it started, with a consent record `inactive`.
It works in chunks, each under the alert's row lock (PostgreSQL) or the write lock (SQLite),
and each chunk asks the database again who is left: a second beat, or a restart, removes no
one twice and writes no second record; readers who already left are not touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import Select, and_, exists, func, not_, select
from sqlalchemy.orm import Session

from clarion import audit, tokens
from clarion.alerts import campaigns
from clarion.audience import subscribers
from clarion.config import get_settings
from clarion.db import insert_for, session_scope, utcnow
from clarion.editors import require
from clarion.errors import InvalidToken, NotFound, ValidationError
from clarion.i18n import admin_gettext, gettext
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Click,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Editor,
    Stay,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.tracking import eventstream, readers

log = logging.getLogger(__name__)

ACTION = "inactive"  # the consent record of a reader removed for not pressing stay
SOURCE = "re-permission"
MAX_DAYS = 90
CHUNK = 500
# Its deadline runs once the mail went out (or what went of it, before it was cancelled).
CLOSABLE = (AlertStatus.SENT, AlertStatus.CANCELLED)


# --- writing one ------------------------------------------------------------------------


def create(
    session: Session,
    editor: Editor | None,
    draft: campaigns.Draft,
    stay_days: int | None,
    ip: str | None = None,
) -> Alert:
    """A "stay subscribed?" newsletter draft: its readers have `stay_days` from its start to
    press "Yes, keep me" (or click anything) before they are unsubscribed."""
    if editor is not None:
        require(editor, "compose")
    errors: dict[str, str] = {}
    if stay_days is None or not 1 <= stay_days <= MAX_DAYS:
        errors["stay_days"] = admin_gettext(
            "Give the deadline in days, from 1 to %(max)s.", max=MAX_DAYS
        )
    draft.kind = AlertKind.NEWSLETTER.value
    alert = None
    try:  # a refusal names every fault at once, the deadline's too (the caller rolls back)
        alert = campaigns.create_draft(session, editor, draft, ip)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors or alert is None:
        raise ValidationError(errors)
    alert.stay_days = stay_days
    audit.record(session, editor, "alert.stay_ask", f"alert:{alert.id}", ip, days=stay_days)
    return alert


def deadline(alert: Alert) -> datetime | None:
    """When readers who did not press stay are removed: the start plus the days given."""
    if alert.stay_days is None or alert.started_at is None:
        return None
    return alert.started_at + timedelta(days=alert.stay_days)


# --- the reader's press ------------------------------------------------------------------


@dataclass(frozen=True)
class StayCard:
    """Who a stay token speaks for, and whether pressing it can still keep them."""

    subscriber: Subscriber
    alert: Alert
    stayed: bool  # pressed already
    removed: bool  # the deadline passed and they were unsubscribed for it


def card(session: Session, token: str) -> StayCard:
    """The reader and mail behind a stay token; InvalidToken when forged or not a stay
    mail's, NotFound when the reader or the mail is gone."""
    try:
        delivery_id = tokens.delivery_tokens(tokens.CLICK).decode(readers.read_stay_token(token))
    except InvalidToken:
        raise InvalidToken(gettext("This link is not valid.")) from None
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(gettext("This subscription no longer exists."))
    alert = session.get(Alert, delivery.alert_id)
    if alert is None or alert.stay_days is None:
        raise InvalidToken(gettext("This link is not valid."))
    subscriber = session.get(Subscriber, delivery.subscriber_id)
    stayed = session.scalar(
        select(Stay.id).where(Stay.alert_id == alert.id, Stay.subscriber_id == subscriber.id)
    )
    removed = session.scalar(
        select(ConsentRecord.id).where(
            ConsentRecord.alert_id == alert.id,
            ConsentRecord.subscriber_id == subscriber.id,
            ConsentRecord.action == ACTION,
        )
    )
    return StayCard(subscriber, alert, stayed is not None, removed is not None)


def stay(session: Session, token: str) -> StayCard:
    """Record the press (once; pressing again changes nothing). After the reader was removed
    for the deadline nothing is recorded: the page offers to subscribe again."""
    found = card(session, token)
    if found.removed or found.stayed:
        return found
    stmt = insert_for(session)(Stay).values(
        alert_id=found.alert.id, subscriber_id=found.subscriber.id, created_at=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing())
    return StayCard(found.subscriber, found.alert, True, False)


# --- who is removed ----------------------------------------------------------------------


def _lists(alert: Alert) -> list[int]:
    audience = (alert.frozen_meta or {}).get("audience") or alert.audience or {}
    return [int(i) for i in audience.get("lists", [])]


def _stay_links(alert: Alert) -> list[int]:
    target = get_settings().base_url + tokens.STAY_PATH
    return [n for n, url in enumerate(alert.frozen_links or []) if url == target]


def to_remove(alert: Alert) -> Select[Any]:
    """Ids of the readers the mail was sent to who did not press stay, clicked nothing since it
    started (following its stay link alone is not pressing it), and are still on one of its
    lists, in id order."""
    since = alert.started_at or utcnow()
    clicked = exists().where(
        Click.subscriber_id == Subscriber.id,
        Click.suspected_scanner.is_(False),
        Click.clicked_at >= since,
        not_(and_(Click.alert_id == alert.id, Click.link_index.in_(_stay_links(alert)))),
    )
    return (
        select(Subscriber.id)
        .where(
            exists().where(
                Delivery.alert_id == alert.id,
                Delivery.subscriber_id == Subscriber.id,
                Delivery.status == DeliveryStatus.SENT,
            ),
            ~exists().where(Stay.alert_id == alert.id, Stay.subscriber_id == Subscriber.id),
            ~clicked,
            exists().where(
                Subscription.subscriber_id == Subscriber.id,
                Subscription.list_id.in_(_lists(alert)),
                Subscription.status == SubscriptionStatus.SUBSCRIBED,
            ),
        )
        .order_by(Subscriber.id)
    )


def counts(session: Session, alert: Alert) -> dict[str, int]:
    """Sent, stayed, to be removed (0 once done), removed: for the editor."""

    def count(query: Select[Any]) -> int:
        return session.scalar(select(func.count()).select_from(query.subquery())) or 0

    sent = select(Delivery.id).where(
        Delivery.alert_id == alert.id, Delivery.status == DeliveryStatus.SENT
    )
    removed = select(ConsentRecord.id).where(
        ConsentRecord.alert_id == alert.id, ConsentRecord.action == ACTION
    )
    pending = alert.started_at is not None and alert.stay_closed_at is None
    return {
        "sent": count(sent),
        "stayed": count(select(Stay.id).where(Stay.alert_id == alert.id)),
        "to_remove": count(to_remove(alert)) if pending else 0,
        "removed": count(removed),
    }


def due(session: Session, now: datetime) -> list[int]:
    """The "stay subscribed?" mails whose deadline has passed and whose work is not done."""
    rows = session.execute(
        select(Alert.id, Alert.started_at, Alert.stay_days).where(
            Alert.stay_days.is_not(None),
            Alert.stay_closed_at.is_(None),
            Alert.status.in_(CLOSABLE),
            Alert.started_at.is_not(None),
        )
    )
    return [i for i, started, days in rows if started + timedelta(days=days) <= now]


def remove_due(now: datetime | None = None) -> dict[int, int]:
    """Periodic: for each mail past its deadline, unsubscribe the readers who did not stay;
    returns how many each removed in this run."""
    now = now or utcnow()
    with session_scope() as session:
        found = due(session, now)
    if not found:
        return {}
    try:  # clicks of the last seconds still wait in Redis: they keep their readers too
        eventstream.flush()
    except redis.RedisError as exc:
        log.warning("re-permission: buffered clicks not written first: %s", exc)
        return {}
    return {alert_id: remove(alert_id, now) for alert_id in found}


def remove(alert_id: int, now: datetime) -> int:
    """Unsubscribe the mail's readers who did not stay, a chunk per transaction under the
    alert's lock; then mark it done. Safe to run twice at once."""
    removed = 0
    while True:
        with session_scope() as session:
            # Row-locked on PostgreSQL; SQLite sessions begin holding the write lock.
            alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
            if alert is None or alert.stay_closed_at is not None:
                return removed
            ids = list(session.scalars(to_remove(alert).limit(CHUNK)))
            if not ids:
                alert.stay_closed_at = now
                audit.record(session, None, "alert.stay_closed", f"alert:{alert_id}")
                return removed
            left = subscribers.unsubscribe_many(
                session, ids, _lists(alert), action=ACTION, source=SOURCE, alert_id=alert_id
            )
            removed += len(left)
