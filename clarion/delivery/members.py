"""A segment send's readers, chosen once when its dispatch begins (the table alert_audience).

An audience with conditions (clarion.alerts.segments) is evaluated once, in one set-based
INSERT … SELECT, about the cost of counting it; dispatch then pages over these ids as over a
list, where each page used to evaluate every condition again for its range (bench/README.md,
Segments). A page still checks at write time everything a list page checks (subscribed, not
suppressed, tags, languages), so a reader who left after the start is not written. The rows
and the mark on the alert (frozen_meta["listed_for"]) are written in one transaction, so a dispatch
that stops and starts again finds either all of them or none; they are deleted with the last
page or when the send is cancelled. Conditions are frozen at the start of a send already; the
readers they choose now are too: one who comes to meet them during the dispatch is not taken.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from clarion.alerts import campaigns, segments
from clarion.db import set_based, utcnow
from clarion.models import Alert, AlertAudience, AlertRole, AlertStatus, Subscriber

# Welcome mails and series steps are written reader by reader as they come, not by dispatch.
_OPEN_ROLES = (AlertRole.WELCOME.value, AlertRole.SERIES_STEP.value)


def _conditions(alert: Alert) -> Any:
    return ((alert.frozen_meta or {}).get("audience") or {}).get("conditions")


def listed(alert: Alert) -> bool:
    """Whether dispatch pages over the alert's listed readers (and not its conditions)."""
    # The mark names the alert: a follow-up made with a copy of its frozen_meta is not listed.
    mark = (alert.frozen_meta or {}).get("listed_for")
    return mark is not None and mark == alert.id and alert.dispatched_at is None


def to_list(alert: Alert) -> bool:
    """Whether the alert is a segment send whose readers are still to be listed."""
    if alert.dispatched_at is not None or listed(alert):
        return False
    if not _conditions(alert) or alert.role in _OPEN_ROLES:
        return False
    return alert.status in (AlertStatus.SENDING, AlertStatus.PAUSED)


def list_readers(session: Session, alert: Alert) -> bool:
    """Write the readers the alert's conditions choose now, once, and mark the alert; False
    when there is nothing to do (no conditions, already listed, done)."""
    if not to_list(alert):
        return False
    with set_based(session):  # built within: its conditions' form depends on work_mem
        chosen = campaigns.audience_query(session, alert.frozen_meta["audience"]).subquery()
        stmt = insert(AlertAudience).from_select(
            ["alert_id", "subscriber_id"], select(literal(alert.id), chosen.c.id)
        )
        session.execute(stmt)
    # A new dict, so that the change is seen: the readers the frozen audience chose, and when.
    alert.frozen_meta = {
        **alert.frozen_meta,
        "listed_for": alert.id,
        "listed_at": utcnow().isoformat(),
    }
    return True


def member(session: Session, alert_id: int) -> ColumnElement[bool]:
    """True for a reader listed for the alert (within segments.page_of, in the page's range).

    On SQLite an IN, listed once: as a correlated EXISTS, SQLite bounded its search of the
    primary key by the page's range rather than the reader's id, a scan of the range for each
    reader (a 15,000-reader page took 830 ms at 100,000 readers)."""
    if session.get_bind().dialect.name == "sqlite":
        ids = select(AlertAudience.subscriber_id).where(
            AlertAudience.alert_id == alert_id, *segments.page_range(AlertAudience.subscriber_id)
        )
        return Subscriber.id.in_(ids)
    return exists().where(
        AlertAudience.alert_id == alert_id, segments.reader(AlertAudience.subscriber_id)
    )


def without_conditions(audience: dict[str, Any]) -> dict[str, Any]:
    """The audience with its conditions left out: what a page of listed readers checks."""
    return {key: value for key, value in audience.items() if key != "conditions"}


def page_end(session: Session, alert_id: int, after: int, size: int) -> int | None:
    """The size-th listed reader's id above `after` (an index-only scan of the primary key),
    or the last one's when fewer are left; None when none is."""
    above = [AlertAudience.alert_id == alert_id, AlertAudience.subscriber_id > after]
    end = session.scalar(
        select(AlertAudience.subscriber_id)
        .where(*above)
        .order_by(AlertAudience.subscriber_id)
        .offset(size - 1)
        .limit(1)
    )
    if end is not None:
        return end
    return session.scalar(select(func.max(AlertAudience.subscriber_id)).where(*above))


def forget(session: Session, alert_id: int) -> None:
    """Delete the alert's listed readers (its ledger is written, or the send is cancelled)."""
    session.execute(delete(AlertAudience).where(AlertAudience.alert_id == alert_id))
