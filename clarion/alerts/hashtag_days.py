"""A hashtag day's announcement (before the day) and reminder (on the day), planned as alerts.

Each is an alert of its own (parent_id = the hashtag day, role announcement or reminder),
scheduled for a time the editor gives in their own zone and started by beat like any
scheduled alert. At its start it takes the hashtag day's content, audience and sender as they
are then, and is frozen like every send. The reminder leaves out readers who already clicked
one of the day's share links (in the announcement or in the hashtag day itself, if that was
sent): they have done what it asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.alerts import campaigns, kinds, segments
from clarion.db import utcnow
from clarion.editors import require
from clarion.errors import InvalidTransition, ValidationError
from clarion.i18n import NA_, admin_gettext
from clarion.models import Alert, AlertKind, AlertRole, AlertStatus, Editor

PLANNED = (AlertRole.ANNOUNCEMENT, AlertRole.REMINDER)
UNSENT = (AlertStatus.DRAFT, AlertStatus.SCHEDULED)
LABELS = {AlertRole.ANNOUNCEMENT: "announcement", AlertRole.REMINDER: "reminder"}
CHANGED_TOO_LATE = {
    AlertRole.ANNOUNCEMENT: NA_("The announcement is %(status)s: it can no longer change."),
    AlertRole.REMINDER: NA_("The reminder is %(status)s: it can no longer change."),
}
# What a child takes from the hashtag day when it starts (its subject and time are its own).
INHERITED = ("kind", "preheader", "layout_mjml", "sender_list_id", "archive_public", "language")


@dataclass(frozen=True)
class PlanItem:
    """One planned mail as the editor gives it: a local "YYYY-MM-DDTHH:MM" ("" for none)."""

    when: str = ""
    subject: str = ""


def default_subject(role: AlertRole, parent: Alert) -> str:
    """What the announcement or reminder is called unless the editor says otherwise."""
    return parent.subject if role == AlertRole.ANNOUNCEMENT else f"Today: {parent.subject}"[:300]


def children(session: Session, parent: Alert) -> dict[AlertRole, Alert]:
    """The hashtag day's latest announcement and reminder, by role."""
    found = session.scalars(
        select(Alert)
        .where(Alert.parent_id == parent.id, Alert.role.in_([r.value for r in PLANNED]))
        .order_by(Alert.id)
    )
    return {AlertRole(child.role): child for child in found}


def _moment(parent: Alert) -> datetime:
    moment = kinds.action_moment(parent.fields or {})
    if moment is None:
        raise ValidationError(
            {
                "action_date": admin_gettext(
                    "Give the hashtag day its date, time and zone first, then plan it."
                )
            }
        )
    return moment


def _check_time(
    role: AlertRole, when: datetime, moment: datetime, editor: Editor, errors: dict[str, str]
) -> None:
    key = f"{role.value}_at"
    zone = ZoneInfo(editor.timezone)
    if when <= utcnow() + timedelta(seconds=30):
        shown = when.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        errors[key] = admin_gettext("%(when)s has already passed.", when=shown)
        return
    day = moment.date()
    local_day = when.astimezone(moment.tzinfo).date()
    where = {"day": f"{day:%Y-%m-%d}", "zone": str(moment.tzinfo)}
    if role == AlertRole.ANNOUNCEMENT and local_day >= day:
        errors[key] = admin_gettext(
            "The announcement goes out before the day of action (%(day)s in %(zone)s).", **where
        )
    if role == AlertRole.REMINDER and local_day != day:
        errors[key] = admin_gettext(
            "The reminder goes out on the day of action (%(day)s in %(zone)s).", **where
        )


def _clean(
    session: Session, editor: Editor, parent: Alert, items: dict[AlertRole, PlanItem]
) -> dict[AlertRole, tuple[datetime, str] | None]:
    """Every planned time and subject checked at once; ValidationError names each problem."""
    moment = _moment(parent)
    current = children(session, parent)
    errors: dict[str, str] = {}
    cleaned: dict[AlertRole, tuple[datetime, str] | None] = {}
    for role in PLANNED:
        item = items.get(role, PlanItem())
        key = f"{role.value}_at"
        child = current.get(role)
        if child is not None and child.status not in UNSENT:
            if item.when.strip():
                errors[key] = admin_gettext(
                    CHANGED_TOO_LATE[role], status=admin_gettext(child.status.value)
                )
            continue
        if not item.when.strip():
            cleaned[role] = None
            continue
        try:
            when = campaigns.parse_local(item.when, editor.timezone)
        except ValidationError as exc:
            errors[key] = exc.errors["scheduled_at"]
            continue
        _check_time(role, when, moment, editor, errors)
        subject = " ".join(item.subject.split()) or default_subject(role, parent)
        if len(subject) > 300:
            errors[f"{role.value}_subject"] = admin_gettext(
                "Keep the subject under 300 characters."
            )
        cleaned[role] = (when, subject)
    first, second = cleaned.get(AlertRole.ANNOUNCEMENT), cleaned.get(AlertRole.REMINDER)
    if first and second and first[0] >= second[0]:
        errors.setdefault("reminder_at", "The reminder goes out after the announcement.")
    if any(cleaned.values()) and not (parent.audience or {}).get("lists"):
        errors["lists"] = admin_gettext("Choose the hashtag day's lists before planning its mails.")
    if errors:
        raise ValidationError(errors)
    return cleaned


def plan(
    session: Session,
    editor: Editor,
    parent: Alert,
    items: dict[AlertRole, PlanItem],
    ip: str | None = None,
) -> dict[AlertRole, Alert]:
    """Schedule, move or drop the announcement and the reminder; returns the planned ones.

    A mail given no time is dropped if it has not started; one that has started stays as it is.
    """
    require(editor, "send")
    if parent.kind != AlertKind.HASHTAG_DAY or parent.role in {r.value for r in PLANNED}:
        raise InvalidTransition(
            admin_gettext("Only a hashtag day has an announcement and a reminder.")
        )
    cleaned = _clean(session, editor, parent, items)
    current = children(session, parent)
    for role, value in cleaned.items():
        child = current.get(role)
        if value is None:
            if child is not None:
                audit.record(session, editor, "alert.unplan", f"alert:{child.id}", ip)
                session.delete(child)
                del current[role]
            continue
        when, subject = value
        if child is None:
            child = current[role] = Alert(parent_id=parent.id, role=role.value)
            session.add(child)
        _copy_parent(parent, child)
        child.subject = subject
        child.name = f"{subject} ({LABELS[role]})"[:200]
        child.status = AlertStatus.SCHEDULED
        child.status_reason = ""
        child.scheduled_at = when
        child.created_by_id = editor.id
        session.flush()
        audit.record(
            session, editor, "alert.plan", f"alert:{child.id}", ip,
            parent=parent.id, role=role.value, at=when.isoformat(),
        )  # fmt: skip
    return current


def _copy_parent(parent: Alert, child: Alert) -> None:
    for name in INHERITED:
        setattr(child, name, getattr(parent, name))
    child.fields = dict(parent.fields or {})
    child.audience = dict(parent.audience or {})
    child.translations = {code: dict(v) for code, v in (parent.translations or {}).items()}


def inherit(session: Session, child: Alert) -> None:
    """Just before an announcement or reminder starts: the hashtag day's content as it is now.

    ValidationError when the mail has lost its point (the day has begun, or is over).
    """
    if child.role not in {r.value for r in PLANNED} or child.parent_id is None:
        return
    parent = session.get(Alert, child.parent_id)
    if parent is None:
        return  # the hashtag day was deleted: the mail keeps the content it was planned with
    moment = _moment(parent)
    now = utcnow()
    if child.role == AlertRole.ANNOUNCEMENT and now >= moment:
        raise ValidationError(
            {"scheduled_at": admin_gettext("The action has begun: too late to announce it.")}
        )
    day_end = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=moment.tzinfo)
    if child.role == AlertRole.REMINDER and now >= day_end:
        raise ValidationError(
            {"scheduled_at": admin_gettext("The day of action is over: nothing to remind.")}
        )
    _copy_parent(parent, child)


def _earlier_mails(session: Session, reminder: Alert) -> list[tuple[int, list[str]]]:
    """The day's mails a reader may have shared from: the hashtag day itself, its
    announcements, and their follow-ups to those not reached — with their frozen links."""
    if reminder.parent_id is None:
        return []
    roots = [reminder.parent_id]
    roots += list(
        session.scalars(
            select(Alert.id).where(
                Alert.parent_id == reminder.parent_id, Alert.role == AlertRole.ANNOUNCEMENT.value
            )
        )
    )
    query = select(Alert.id, Alert.frozen_links).where(
        Alert.frozen_at.is_not(None),
        or_(
            Alert.id.in_(roots),
            and_(Alert.parent_id.in_(roots), Alert.role == AlertRole.UNREACHED.value),
        ),
    )
    return [(alert_id, list(links or [])) for alert_id, links in session.execute(query)]


def acted(session: Session, reminder: Alert) -> ColumnElement[bool]:
    """True for a subscriber who clicked a share link in one of the day's earlier mails.

    Share links are recognised by where they point (kinds.share_targets). Clicks
    flagged as a link scanner's do not count: a scanner opening every link shared nothing.
    """
    return segments.shared_from(_earlier_mails(session, reminder))
