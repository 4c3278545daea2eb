"""Confirmation mails owed: marked on their record until sent, queued again by the mail sweep.

A confirmation mail is queued once, after the commit that makes it owed. The task can be
lost (Redis restarted, the web process gone between the commit and the publish) or run out
of retries while the mail server is down for hours; the reader would then never get the link
and never join. So the record that owes a mail (a consent record, a signature) carries
`mail_due_at`: set in the same transaction that creates it, pushed on by each failed try, and
cleared once the mail is sent, refused or moot. Once that time has passed without either, the
sweep queues the mail again. A task that finds nothing owed sends nothing: of two tasks for
the same mail (the sweep's, beside a retry still waiting), the later finds it sent (only two
running in the same moment could both send it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Mapped, Session

from clarion.config import get_settings
from clarion.i18n import NA_
from clarion.models import AdminNotice, ConsentRecord, Signature

# How long a queued mail may take before the sweep looks: a first try and a few quick retries.
FIRST_LOOK = timedelta(minutes=10)
# How long the sweep leaves a mail it queued again before it may queue it once more.
LEASE = timedelta(hours=1)
SWEEP_BATCH = 500  # mails queued again by one sweep, at most (the next sweep takes the rest)
LATE_NOTICE = "confirmations_late"
LATE_TITLE = NA_("Confirmation mails were late and are being tried again")


class Owing(Protocol):
    """A mapped record that may owe a mail (ConsentRecord, Signature)."""

    id: Mapped[int]
    created_at: Mapped[datetime]
    mail_due_at: Mapped[datetime | None]


def first_due(now: datetime) -> datetime:
    """When the sweep first looks at a mail made owed at `now`."""
    return now + FIRST_LOOK


def deferred(
    session: Session, model: type[Owing], record_id: int, wait: int, now: datetime
) -> None:
    """A try failed and the task runs again in `wait` seconds: the sweep stays away till then."""
    session.execute(
        update(model)
        .where(model.id == record_id, model.mail_due_at.is_not(None))
        .values(mail_due_at=now + timedelta(seconds=wait) + FIRST_LOOK)
    )


def settled(record: Owing) -> None:
    """The mail went, was refused or is moot: nothing is owed any more."""
    record.mail_due_at = None


def due_confirmations(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """The consent records (sign-ups) and signatures whose confirmation mail is owed and past
    due, each leased to be queued again; those asked for longer ago than a confirmation link
    lasts are given up."""
    give_up = timedelta(hours=get_settings().confirm_ttl_hours)
    return (
        claim_due(session, ConsentRecord, now, give_up),
        claim_due(session, Signature, now, give_up),
    )


def claim_due(session: Session, model: type[Owing], now: datetime, give_up: timedelta) -> list[int]:
    """Ids of the records whose mail is past due, each leased for LEASE; records older than
    `give_up` are given up instead (a reader who asked that long ago expects nothing)."""
    due = session.execute(
        select(model.id, model.created_at)
        .where(model.mail_due_at.is_not(None), model.mail_due_at <= now)
        .order_by(model.mail_due_at)
        .limit(SWEEP_BATCH)
    ).all()
    stale = [i for i, created in due if created < now - give_up]
    fresh = [i for i, created in due if created >= now - give_up]
    if stale:
        session.execute(update(model).where(model.id.in_(stale)).values(mail_due_at=None))
    if not fresh:
        return []
    # Conditional, so that of two sweeps at once (a second beat) only one queues each mail.
    leased = session.execute(
        update(model)
        .where(model.id.in_(fresh), model.mail_due_at <= now)
        .values(mail_due_at=now + LEASE)
        .returning(model.id)
    )
    return sorted(leased.scalars())


def waiting(session: Session, model: type[Owing]) -> tuple[int, datetime | None]:
    """How many of `model`'s mails are owed, and when the oldest of them was asked for."""
    count, oldest = session.execute(
        select(func.count(), func.min(model.created_at)).where(model.mail_due_at.is_not(None))
    ).one()
    return count, oldest


def note_late(session: Session, queued: int, now: datetime) -> None:
    """Tell the owners on the dashboard: a sweep queued `queued` mails again, so readers are
    waiting for their link (one open notice, counted up by each sweep that finds some)."""
    notice = session.scalar(
        select(AdminNotice).where(
            AdminNotice.kind == LATE_NOTICE, AdminNotice.dismissed_at.is_(None)
        )
    )
    if notice is None:
        notice = AdminNotice(kind=LATE_NOTICE, title=LATE_TITLE, count=0, first_at=now)
        session.add(notice)
    notice.count += queued
    notice.last_at = now
