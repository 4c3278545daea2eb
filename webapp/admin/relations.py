"""What an alert's page shows about the alerts around it: a hashtag day's plan, the day a
planned mail belongs to, the lists a welcome mail serves, the feed a post came from, the
alert a follow-up follows and the follow-ups of an alert, a "stay subscribed?" mail's counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.alerts import followups, hashtag_days, petition_pick
from clarion.audience import repermission
from clarion.models import (
    Alert,
    AlertKind,
    AlertRole,
    Feed,
    FeedEntry,
    MailingList,
    Series,
    SeriesStep,
)


@dataclass
class Relations:
    """The page's extra sections; empty ones are not shown."""

    plannable: bool = False  # a hashtag day: show its announcement / reminder plan
    planned: dict[str, Alert] = field(default_factory=dict)
    plan_values: dict[str, str] = field(default_factory=dict)
    parent: Alert | None = None  # a planned mail's hashtag day
    welcome_lists: list[MailingList] = field(default_factory=list)
    feed: Feed | None = None


def _plan_values(planned: dict[str, Alert], parent: Alert, zone: ZoneInfo) -> dict[str, str]:
    values: dict[str, str] = {}
    for role in hashtag_days.PLANNED:
        child = planned.get(role.value)
        when = child.scheduled_at if child is not None else None
        values[f"{role.value}_at"] = (
            when.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if when else ""
        )
        values[f"{role.value}_subject"] = (
            child.subject if child is not None else hashtag_days.default_subject(role, parent)
        )
    return values


def of(session: Session, alert: Alert, zone: ZoneInfo, typed: dict[str, Any] | None) -> Relations:
    """The relations of one alert, for its page."""
    found = Relations()
    if alert.role in {r.value for r in hashtag_days.PLANNED}:
        found.parent = session.get(Alert, alert.parent_id) if alert.parent_id else None
    elif alert.kind == AlertKind.HASHTAG_DAY:
        found.plannable = True
        found.planned = {r.value: a for r, a in hashtag_days.children(session, alert).items()}
        found.plan_values = typed or _plan_values(found.planned, alert, zone)
    if alert.role == AlertRole.WELCOME:
        found.welcome_lists = list(
            session.scalars(
                select(MailingList)
                .join(Series, Series.list_id == MailingList.id)
                .join(SeriesStep, SeriesStep.series_id == Series.id)
                .where(Series.welcome.is_(True), SeriesStep.alert_id == alert.id)
                .distinct()
            )
        )
    if alert.feed_entry_id:
        found.feed = session.scalar(
            select(Feed)
            .join(FeedEntry, FeedEntry.feed_id == Feed.id)
            .where(FeedEntry.id == alert.feed_entry_id)
        )
    return found


def follow_ups(session: Session, alert: Alert, typed: dict | None = None) -> dict:
    """What the alert's page shows about follow-ups: its origin if it is one, the follow-ups
    written to it, and the form's choices and values (as typed, after a refusal)."""
    link = followups.origin_of(session, alert.id)
    origin = session.get(Alert, link.origin_id) if link is not None else None
    petition = followups.petition_of(alert)
    day = followups.hashtag_day_of(session, alert)
    values = typed or {
        "rule": "sign" if petition else ("share" if day else "click"),
        "petition": str(petition or ""),
        "delay_hours": "",
    }
    return {
        "link": link,
        "origin": origin,
        "children": followups.follow_ups(session, alert.id),
        "can_follow": followups.followable(alert),
        "rules": followups.RULES,
        "has_day": day is not None,
        "petitions": petition_pick.choices(session) if followups.followable(alert) else [],
        "values": values,
        "errors": {},
    }


def stay(session: Session, alert: Alert) -> dict | None:
    """A "stay subscribed?" mail's deadline and counts: sent, stayed, to be removed, removed."""
    if alert.stay_days is None:
        return None
    return {"deadline": repermission.deadline(alert), "counts": repermission.counts(session, alert)}
