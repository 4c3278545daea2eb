"""What a bounce or complaint does: the one policy for every path a report arrives by.

The bounce server, the IMAP mailbox, provider webhooks and the delivery engine's own refused
recipients all end in `act`, which records a Bounce (with its evidence, purged after 30 days by
`clarion.retention`) and applies the policy whose numbers owners edit (`clarion.bounces.numbers`):

- hard: the address is suppressed at once.
- soft: counted at most once per UTC day per address; the address is suppressed when
  `soft_limit` counted soft bounces were received within `soft_window_days` and after its last
  successful delivery.
- A **successful delivery** is a ledger row to the reader that the receiving server accepted
  (status sent) at least `success_quiet_hours` ago, and about which no hard, soft, complaint,
  sender-fault or delay report has been recorded since. A later one resets the count: soft
  bounces received before it was sent no longer count.
- complaint: the reader is unsubscribed from every list (consent record "complaint") and the
  address suppressed.
- sender-fault (our sending refused: policy, authentication, reputation, blocklists): nothing
  happens to the reader; owners get a notice on the dashboard, and the alert pauses when
  `sender_fault_limit` such refusals for it come within `sender_fault_window_minutes`.
- delay, auto-reply, not a bounce: recorded as ignored.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clarion import audit, outbox, throttle
from clarion.alerts import reasons
from clarion.audience import subscribers
from clarion.audience.directory import Detail
from clarion.bounces.numbers import BouncePolicy, load_policy
from clarion.db import insert_for, utcnow
from clarion.delivery import sending
from clarion.delivery.refusals import Finding
from clarion.errors import InvalidTransition, NotFound
from clarion.i18n import NA_
from clarion.models import (
    AdminNotice,
    Alert,
    AlertStatus,
    Bounce,
    BounceClass,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Editor,
    Subscriber,
    Suppression,
    SuppressionReason,
)
from clarion.redisconn import get_redis

# Reports about a delivery that deny it was a success.
FAILURE_REPORTS = (
    BounceClass.HARD,
    BounceClass.SOFT,
    BounceClass.COMPLAINT,
    BounceClass.SENDER_FAULT,
    BounceClass.DELAY,
)
SENDER_FAULT_NOTICE = "sender_fault"
# Stored in English with the notice; the admin shows it in the editor's words (admin_stored).
NOTICE_TITLE = NA_("Our sending of “%(alert)s” was refused")


def act(
    session: Session, finding: Finding, policy: BouncePolicy, now: datetime | None = None
) -> Bounce:
    """Record the report and apply the policy to its reader; the caller commits."""
    now = now or utcnow()
    klass = finding.classification
    if klass is BounceClass.HARD:
        return _hard(session, finding, now)
    if klass is BounceClass.SOFT:
        return _soft(session, finding, policy, now)
    if klass is BounceClass.COMPLAINT:
        return _complaint(session, finding, now)
    if klass is BounceClass.SENDER_FAULT:
        bounce = _record(session, finding, now, "notice to owners")
        if finding.alert_id is not None and sender_fault(
            session, finding.alert_id, finding.reason, policy
        ):
            bounce.action = "notice; alert paused"
        return bounce
    return _record(session, finding, now, "ignored")


def _record(session: Session, finding: Finding, now: datetime, action: str, **extra) -> Bounce:
    bounce = Bounce(
        received_at=now,
        source=finding.source,
        delivery_id=finding.delivery_id,
        alert_id=finding.alert_id,
        subscriber_id=finding.subscriber_id,
        email=finding.email,
        classification=finding.classification,
        status_code=finding.status[:16],
        reason=finding.reason[:2000],
        action=action,
        evidence=finding.evidence,
        **extra,
    )
    session.add(bounce)
    session.flush()
    return bounce


def _hard(session: Session, finding: Finding, now: datetime) -> Bounce:
    already = _is_suppressed(session, finding.email)
    bounce = _record(session, finding, now, "already suppressed" if already else "suppressed")
    _suppress(session, finding, SuppressionReason.HARD_BOUNCE, bounce, now)
    if not already:
        _bounced_event(session, finding, bounce)
    return bounce


def _soft(session: Session, finding: Finding, policy: BouncePolicy, now: datetime) -> Bounce:
    bounce = _count_once_a_day(session, finding, now)
    if not bounce.counted:
        return bounce
    count = soft_count(session, finding.email, finding.subscriber_id, policy, now)
    bounce.action = f"counted {count} of {policy.soft_limit}"
    if count >= policy.soft_limit:
        bounce.action += ", suppressed"
        _suppress(session, finding, SuppressionReason.SOFT_BOUNCES, bounce, now)
        _bounced_event(session, finding, bounce)
    return bounce


def _bounced_event(session: Session, finding: Finding, bounce: Bounce) -> None:
    """Tell the webhooks that an address now gets no mail because it bounced."""
    payload = {
        "subscriber_id": finding.subscriber_id,
        "alert_id": finding.alert_id,
        "bounce_id": bounce.id,
        "classification": finding.classification.value,
    }
    outbox.record(session, "subscriber.bounced", payload)


def _count_once_a_day(session: Session, finding: Finding, now: datetime) -> Bounce:
    """The Bounce, counted unless the address already has a counted one today.

    The unique (email, counted_on) index settles races between workers: the loser's insert
    fails inside its savepoint and it records the bounce as not counted.
    """
    today = now.date()
    taken = select(Bounce.id).where(Bounce.email == finding.email, Bounce.counted_on == today)
    if session.scalar(taken) is None:
        with contextlib.suppress(IntegrityError), session.begin_nested():
            return _record(session, finding, now, "counted", counted=True, counted_on=today)
    return _record(session, finding, now, "not counted: counted today")


def soft_count(
    session: Session,
    email: str,
    subscriber_id: int | None,
    policy: BouncePolicy,
    now: datetime | None = None,
) -> int:
    """Counted soft bounces of an address within the window and since its last success."""
    now = now or utcnow()
    start = now - timedelta(days=policy.soft_window_days)
    success = last_success(session, subscriber_id, policy, now) if subscriber_id else None
    if success is not None and success > start:
        start = success
    return (
        session.scalar(
            select(func.count())
            .select_from(Bounce)
            .where(
                Bounce.email == email, Bounce.counted_on.is_not(None), Bounce.received_at > start
            )
        )
        or 0
    )


def soft_standing(session: Session, detail: Detail) -> Detail:
    """A subscriber's page with the soft bounces counting now towards suppression, and the
    limit (the audience's directory cannot ask the policy itself: it sits below it)."""
    numbers = load_policy(session)
    reader = detail.subscriber
    detail.soft_bounces = soft_count(session, reader.email, reader.id, numbers)
    detail.soft_limit = numbers.soft_limit
    return detail


def last_success(
    session: Session, subscriber_id: int, policy: BouncePolicy, now: datetime | None = None
) -> datetime | None:
    """When the reader's latest successful delivery was sent (see the module's definition)."""
    now = now or utcnow()
    reported = exists().where(
        Bounce.delivery_id == Delivery.id, Bounce.classification.in_(FAILURE_REPORTS)
    )
    return session.scalar(
        select(func.max(Delivery.sent_at)).where(
            Delivery.subscriber_id == subscriber_id,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.sent_at <= now - timedelta(hours=policy.success_quiet_hours),
            ~reported,
        )
    )


def _complaint(session: Session, finding: Finding, now: datetime) -> Bounce:
    if not finding.email and finding.subscriber_id is None:
        return _record(session, finding, now, "recorded: it names no reader")
    bounce = _record(session, finding, now, "unsubscribed, suppressed")
    reader = _reader(session, finding)
    if reader is not None:
        left = subscribers.unsubscribe(
            session,
            reader,
            None,
            action="complaint",
            source=finding.source,
            alert_id=finding.alert_id,
        )
        if not left:  # already off every list: the complaint is still a withdrawal on record
            session.add(
                ConsentRecord(
                    subscriber_id=reader.id,
                    action="complaint",
                    list_ids=[],
                    source=finding.source[:64],
                    alert_id=finding.alert_id,
                )
            )
    _suppress(session, finding, SuppressionReason.COMPLAINT, bounce, now)
    payload = {
        "subscriber_id": reader.id if reader is not None else None,
        "alert_id": finding.alert_id,
        "bounce_id": bounce.id,
    }
    outbox.record(session, "subscriber.complained", payload)
    return bounce


def _reader(session: Session, finding: Finding) -> Subscriber | None:
    if finding.subscriber_id is not None:
        return session.get(Subscriber, finding.subscriber_id)
    return session.scalar(select(Subscriber).where(Subscriber.email == finding.email))


def _is_suppressed(session: Session, email: str) -> bool:
    return session.scalar(select(Suppression.id).where(Suppression.email == email)) is not None


def _suppress(
    session: Session, finding: Finding, reason: SuppressionReason, bounce: Bounce, now: datetime
) -> None:
    """Put the address on the suppression list; an existing entry keeps its first reason."""
    if not finding.email:
        return
    session.execute(
        insert_for(session)(Suppression.__table__)
        .values(
            email=finding.email,
            email_hash=throttle.address_key(finding.email),
            reason=reason.value,
            detail=f"{finding.status} {finding.reason}".strip()[:2000],
            bounce_id=bounce.id,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )


# --- Sender fault ---------------------------------------------------------------------------


def sender_fault(
    session: Session, alert_id: int, detail: str, policy: BouncePolicy, immediate: bool = False
) -> bool:
    """Our sending of an alert was refused (policy, authentication, reputation): tell the owners,
    and pause the alert when it repeats (at once when `immediate`). True when the alert is now
    paused, by this report or by an earlier one: a batch still sending must stop."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return False
    _notice(session, alert, detail)
    key = f"clarion:sender-fault:{alert_id}"
    client = get_redis()
    count = client.incr(key)
    if count == 1:
        client.expire(key, policy.sender_fault_window_minutes * 60)
    if not immediate and count < policy.sender_fault_limit:
        return False
    if alert.status == AlertStatus.SENDING:
        reason = reasons.stored(reasons.SENDER_FAULT, detail=detail)
        # Another worker may pause it first; transition() then reloads the alert's state.
        with contextlib.suppress(InvalidTransition):
            sending.pause(session, alert, reason=reason[:2000])
    return alert.status == AlertStatus.PAUSED


def _notice(session: Session, alert: Alert, detail: str) -> AdminNotice:
    """The open sender-fault notice of this alert, counted up; a new one if none is open."""
    now = utcnow()
    notice = session.scalar(
        select(AdminNotice).where(
            AdminNotice.kind == SENDER_FAULT_NOTICE,
            AdminNotice.alert_id == alert.id,
            AdminNotice.dismissed_at.is_(None),
        )
    )
    if notice is None:
        notice = AdminNotice(
            kind=SENDER_FAULT_NOTICE,
            alert_id=alert.id,
            title=NOTICE_TITLE % {"alert": alert.name or alert.subject},
            count=0,
            first_at=now,
        )
        session.add(notice)
    notice.count += 1
    notice.last_at = now
    notice.detail = detail[:2000]
    session.flush()
    return notice


def open_notices(session: Session, limit: int = 20) -> list[AdminNotice]:
    """Notices not yet dismissed, newest first, for the dashboard."""
    return list(
        session.scalars(
            select(AdminNotice)
            .where(AdminNotice.dismissed_at.is_(None))
            .order_by(AdminNotice.last_at.desc())
            .limit(limit)
        )
    )


def dismiss_notice(session: Session, actor: Editor, notice_id: int, ip: str | None) -> None:
    """Mark a notice as dealt with (editors who may send); recorded in the audit log."""
    from clarion.editors import require

    require(actor, "send")
    notice = session.get(AdminNotice, notice_id)
    if notice is None or notice.dismissed_at is not None:
        raise NotFound("This notice is gone (perhaps dismissed already).")
    notice.dismissed_at = utcnow()
    notice.dismissed_by_id = actor.id
    audit.record(session, actor, "notice.dismiss", f"notice:{notice.id}", ip, kind=notice.kind)
