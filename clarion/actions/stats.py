"""What an alert achieved and how a petition grows: counts, per link, per hour, per source."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from clarion.models import (
    Alert,
    Bounce,
    BounceClass,
    Click,
    ClickCount,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Open,
    Signature,
)

MAX_HOURS = 24 * 14  # a chart wider than two weeks of hours says nothing more


@dataclass
class LinkStats:
    """Clicks on one link of an alert; scanner clicks are kept apart."""

    index: int
    url: str
    total: int = 0
    unique: int = 0
    scanner: int = 0


@dataclass
class AlertStats:
    """The figures of one alert."""

    recipients: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    total_clicks: int = 0
    unique_clicks: int = 0
    scanner_clicks: int = 0
    links: list[LinkStats] = field(default_factory=list)
    signatures: int = 0
    opens: int = 0
    unique_opens: int = 0

    def status(self, name: str) -> int:
        """Deliveries in one state (sent, deferred, failed …)."""
        return self.statuses.get(name, 0)


def alert_stats(session: Session, alert: Alert) -> AlertStats:
    """Every figure of the alert's stats page."""
    stats = AlertStats()
    for status, n in session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.alert_id == alert.id)
        .group_by(Delivery.status)
    ):
        stats.statuses[DeliveryStatus(status).value] = n
    stats.recipients = sum(stats.statuses.values())
    bounces = dict(
        session.execute(
            select(Bounce.classification, func.count())
            .where(Bounce.alert_id == alert.id)
            .group_by(Bounce.classification)
        ).all()
    )
    stats.hard_bounces = bounces.get(BounceClass.HARD, 0)
    stats.soft_bounces = bounces.get(BounceClass.SOFT, 0)
    stats.complaints = bounces.get(BounceClass.COMPLAINT, 0)
    stats.unsubscribes = _count(
        session,
        select(func.count(distinct(ConsentRecord.subscriber_id))).where(
            ConsentRecord.alert_id == alert.id, ConsentRecord.action == "unsubscribe"
        ),
    )
    _clicks(session, alert, stats)
    stats.signatures = _count(
        session,
        select(func.count())
        .select_from(Signature)
        .where(Signature.alert_id == alert.id, Signature.confirmed_at.is_not(None)),
    )
    stats.opens, stats.unique_opens = session.execute(
        select(func.count(), func.count(distinct(Open.delivery_id))).where(
            Open.alert_id == alert.id
        )
    ).one()
    return stats


def _count(session: Session, query) -> int:
    return int(session.scalar(query) or 0)


def _clicks(session: Session, alert: Alert, stats: AlertStats) -> None:
    links = list(alert.frozen_links or [])
    per_link = {i: LinkStats(i, url) for i, url in enumerate(links)}
    rows = session.execute(
        select(
            Click.link_index,
            Click.suspected_scanner,
            func.count(),
            func.count(distinct(Click.delivery_id)),
        )
        .where(Click.alert_id == alert.id)
        .group_by(Click.link_index, Click.suspected_scanner)
    )
    for index, scanner, total, unique in rows:
        link = per_link.setdefault(index, LinkStats(index, ""))
        if scanner:
            link.scanner += total
        else:
            link.total += total
            link.unique += unique
    # Clicks older than the retention period survive only as per-link counts (retention).
    folded = 0
    for count in session.scalars(select(ClickCount).where(ClickCount.alert_id == alert.id)):
        link = per_link.setdefault(count.link_index, LinkStats(count.link_index, ""))
        link.total += count.clicks
        link.unique += count.unique_clicks
        link.scanner += count.scanner_clicks
        folded = max(folded, count.unique_clicks)
    stats.links = [per_link[i] for i in sorted(per_link)]
    stats.total_clicks = sum(link.total for link in stats.links)
    stats.scanner_clicks = sum(link.scanner for link in stats.links)
    # Unique across links: one reader who clicked two links counts once. Of folded clicks
    # only per-link readers are known: the busiest link's is the least there were.
    stats.unique_clicks = folded + _count(
        session,
        select(func.count(distinct(Click.delivery_id))).where(
            Click.alert_id == alert.id, Click.suspected_scanner.is_(False)
        ),
    )


def _hour(session: Session, column) -> ColumnElement:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def _per_hour(session: Session, column, *where) -> Counter[datetime]:
    bucket = _hour(session, column)
    rows = session.execute(select(bucket, func.count()).where(*where).group_by(bucket))
    return Counter(
        {datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC): n for hour, n in rows if hour}
    )


@dataclass
class Series:
    """Hourly or daily buckets with labels in the viewer's time zone, for a chart."""

    labels: list[str]
    datasets: dict[str, list[int]]

    def as_json(self) -> dict:
        """The shape our chart script reads."""
        return {"labels": self.labels, "datasets": self.datasets}


def _hourly_series(counters: dict[str, Counter[datetime]], zone: str) -> Series:
    keys = [k for counter in counters.values() for k in counter]
    if not keys:
        return Series([], {name: [] for name in counters})
    start, end = min(keys), max(keys)
    tz = ZoneInfo(zone)
    buckets = []
    at = start
    while at <= end:
        buckets.append(at)
        at += timedelta(hours=1)
    return Series(
        labels=[b.astimezone(tz).strftime("%d %b %H:%M") for b in buckets],
        datasets={name: [counter.get(b, 0) for b in buckets] for name, counter in counters.items()},
    )


def alert_hourly(session: Session, alert: Alert, zone: str) -> Series:
    """Clicks (people, scanners apart) and signatures per hour since the alert went out."""
    clicks = _per_hour(
        session, Click.clicked_at, Click.alert_id == alert.id, Click.suspected_scanner.is_(False)
    )
    scanners = _per_hour(
        session, Click.clicked_at, Click.alert_id == alert.id, Click.suspected_scanner.is_(True)
    )
    signatures = _per_hour(
        session,
        Signature.created_at,
        Signature.alert_id == alert.id,
        Signature.confirmed_at.is_not(None),
    )
    counters = {"clicks": clicks, "scanner_clicks": scanners, "signatures": signatures}
    return _hourly_series(_clip(counters), zone)


def _clip(counters: dict[str, Counter[datetime]]) -> dict[str, Counter[datetime]]:
    keys = [k for counter in counters.values() for k in counter]
    if not keys:
        return counters
    first = min(keys)
    limit = first + timedelta(hours=MAX_HOURS)
    return {
        name: Counter({k: v for k, v in counter.items() if k < limit})
        for name, counter in counters.items()
    }


def petition_daily(session: Session, petition_id: int, zone: str) -> Series:
    """Confirmed signatures per day in the viewer's zone, and the running total."""
    hourly = _per_hour(
        session,
        Signature.created_at,
        Signature.petition_id == petition_id,
        Signature.confirmed_at.is_not(None),
    )
    tz = ZoneInfo(zone)
    daily: Counter[date] = Counter()
    for hour, n in hourly.items():
        daily[hour.astimezone(tz).date()] += n
    if not daily:
        return Series([], {"signatures": [], "total": []})
    days = [min(daily) + timedelta(days=i) for i in range((max(daily) - min(daily)).days + 1)]
    counts = [daily.get(day, 0) for day in days]
    running = list(accumulate(counts))
    labels = [day.strftime("%d %b %Y") for day in days]
    return Series(labels, {"signatures": counts, "total": running})


def petition_sources(session: Session, petition_id: int) -> list[tuple[str, int]]:
    """Confirmed signatures per `?source=` code, most first."""
    source = func.coalesce(Signature.source, "")
    rows = session.execute(
        select(source, func.count())
        .where(Signature.petition_id == petition_id, Signature.confirmed_at.is_not(None))
        .group_by(source)
        .order_by(func.count().desc(), source)
    )
    return [(name or "(none)", n) for name, n in rows]
