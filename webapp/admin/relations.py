"""What an alert's page shows about the alerts around it: a hashtag day's plan, the day a
planned mail belongs to, the lists a welcome mail serves, the feed a post came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.alerts import hashtag_days
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
