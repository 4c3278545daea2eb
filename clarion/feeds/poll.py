"""Polling feeds: a conditional GET through the safe fetcher; new entries become new-post alerts.

A poll is claimed by moving the feed's `last_polled_at` in one UPDATE, so two beats (or a beat
and "Check now") never fetch the same feed twice over. The fetch and the image copies run
outside any transaction; what they found is then written with the feed row locked.

- The first successful poll marks every entry seen and makes no alert: adding never floods.
- Later, an entry with an id not seen before makes a draft new-post alert: title, link,
  summary as plain text, and the image copied to Clarion's media (never loaded from the blog).
  At most MAX_ALERTS_PER_POLL at once (the newest); more means the feed changed its ids, and
  the rest are marked seen with a note.
- An entry seen before with new content (same id) never makes a second alert. If its alert is
  a draft or scheduled and no editor has changed it, the alert takes the new title, summary,
  link and image; otherwise it is left as it is and the entry says so.
- With automatic sending, the alert is scheduled for the feed's lists after its delay.
- A failure (refused address, timeout, too large, not a feed, malformed XML, HTTP error) is
  recorded on the feed and shown in the admin; nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from clarion import audit
from clarion.alerts import campaigns, kinds, media, reasons
from clarion.config import get_settings
from clarion.db import session_scope, utcnow
from clarion.errors import FeedInvalid, FetchRefused, ValidationError
from clarion.feeds import parse
from clarion.feeds.parse import Entry
from clarion.fetch import FetchPolicy, FetchResult, fetch
from clarion.i18n import NA_
from clarion.models import Alert, AlertKind, AlertStatus, Feed, FeedEntry, MailingList

MAX_ALERTS_PER_POLL = 5
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9"
EDITABLE = (AlertStatus.DRAFT, AlertStatus.SCHEDULED)
# An entry's note, stored in English; the admin shows it in the editor's words (admin_stored).
IMAGE_LEFT_OUT = NA_("The post's image was left out. %(problem)s")
TOO_MANY = NA_("Not made into an alert: more than %(n)s new posts appeared at once.")
NOT_MADE = NA_("Not made into an alert: %(problems)s")
KEPT_AS_CHANGED = NA_("Edited in the feed after its alert was changed or sent: the alert was kept.")
KEPT = NA_("Edited in the feed; the alert was kept: %(problems)s")
UPDATED = NA_("Edited in the feed: the alert was updated to match.")
NOTES = (IMAGE_LEFT_OUT, TOO_MANY, NOT_MADE, KEPT_AS_CHANGED, KEPT, UPDATED)


@dataclass
class PollOutcome:
    """What one poll did."""

    feed_id: int
    status: str  # gone, failed, not_modified, primed, polled
    error: str = ""
    new_alerts: list[int] = field(default_factory=list)
    seen: int = 0  # entries recorded as seen without an alert
    updated: int = 0  # alerts updated from edited entries


def claim_due(now: datetime | None = None) -> list[int]:
    """Claim every enabled feed not polled for CLARION_FEED_POLL_SECONDS, in one UPDATE."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=get_settings().feed_poll_seconds)
    with session_scope() as session:
        return list(
            session.scalars(
                update(Feed)
                .where(
                    Feed.enabled,
                    or_(Feed.last_polled_at.is_(None), Feed.last_polled_at <= cutoff),
                )
                .values(last_polled_at=now)
                .returning(Feed.id)
            )
        )


def _conditional_headers(feed: Feed) -> dict[str, str]:
    headers = {}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


def poll(feed_id: int) -> PollOutcome:
    """Fetch a claimed feed and act on what changed (see the module's description)."""
    with session_scope() as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            return PollOutcome(feed_id, "gone")
        url, headers, primed = feed.url, _conditional_headers(feed), feed.primed_at is not None
    try:
        result = fetch(url, FetchPolicy.from_settings(), accept=ACCEPT, headers=headers)
        entries = (
            []
            if result.status == 304
            else parse.parse(result.body, result.url, result.content_type)
        )
    except (FetchRefused, FeedInvalid) as exc:
        return _record_failure(feed_id, url, str(exc))
    known = _known_hashes(feed_id, [e.entry_id for e in entries])
    fresh = [e for e in entries if e.entry_id not in known]
    chosen = _newest(fresh) if primed else []
    edited = [e for e in entries if e.entry_id in known and known[e.entry_id] != e.content_hash]
    images = {e.entry_id: _copy_image(e) for e in chosen + edited}
    with session_scope() as session:
        feed = session.scalar(select(Feed).where(Feed.id == feed_id).with_for_update())
        if feed is None or feed.url != url:
            return PollOutcome(feed_id, "gone")  # deleted or moved while we were fetching
        return _record(session, feed, result, entries, {e.entry_id for e in chosen}, images)


def _record_failure(feed_id: int, url: str, error: str) -> PollOutcome:
    with session_scope() as session:
        session.execute(
            update(Feed)
            .where(Feed.id == feed_id, Feed.url == url)
            .values(last_error=error, last_error_at=utcnow())
        )
    return PollOutcome(feed_id, "failed", error=error)


def _known_hashes(feed_id: int, entry_ids: list[str]) -> dict[str, str]:
    if not entry_ids:
        return {}
    with session_scope() as session:
        rows = session.execute(
            select(FeedEntry.entry_id, FeedEntry.content_hash).where(
                FeedEntry.feed_id == feed_id, FeedEntry.entry_id.in_(entry_ids)
            )
        )
        return {entry_id: digest for entry_id, digest in rows}


def _newest(fresh: list[Entry]) -> list[Entry]:
    """The newest few of the new entries, oldest first (dateless ones in the feed's order)."""
    ranked = sorted(enumerate(fresh), key=lambda p: (-(p[1].published or 0), p[0]))
    kept = sorted(ranked[:MAX_ALERTS_PER_POLL], key=lambda p: (p[1].published or 0, -p[0]))
    return [entry for _, entry in kept]


def _copy_image(entry: Entry) -> tuple[str, str]:
    """(our copy's URL, "") or ("", why there is none); an image never blocks the alert."""
    if not entry.image_url:
        return "", ""
    settings = get_settings()
    try:
        copied = media.copy_image(
            entry.image_url, settings.instance_dir, settings.base_url, interactive=False
        )
        return copied, ""
    except ValidationError as exc:
        return "", IMAGE_LEFT_OUT % {"problem": exc.errors.get("image_url", exc)}


def _record(
    session: Session,
    feed: Feed,
    result: FetchResult,
    entries: list[Entry],
    chosen: set[str],
    images: dict[str, tuple[str, str]],
) -> PollOutcome:
    now = utcnow()
    feed.last_success_at = now
    feed.last_error = ""
    if result.status == 304:
        return PollOutcome(feed.id, "not_modified")
    feed.etag = (result.headers.get("etag") or "")[:300] or None
    feed.last_modified = (result.headers.get("last-modified") or "")[:100] or None
    first = feed.primed_at is None
    outcome = PollOutcome(feed.id, "primed" if first else "polled")
    rows = {
        row.entry_id: row
        for row in session.scalars(
            select(FeedEntry).where(
                FeedEntry.feed_id == feed.id,
                FeedEntry.entry_id.in_([e.entry_id for e in entries]),
            )
        )
    }
    for entry in entries:
        row = rows.get(entry.entry_id)
        if row is None:
            row = _new_row(session, feed, entry, now)
            if first or entry.entry_id not in chosen:
                if not first:
                    row.note = TOO_MANY % {"n": MAX_ALERTS_PER_POLL}
                outcome.seen += 1
                continue
            alert = _make_alert(session, feed, entry, row, images[entry.entry_id], now)
            if alert is not None:
                outcome.new_alerts.append(alert.id)
        elif row.content_hash != entry.content_hash:
            outcome.updated += _apply_edit(session, row, entry, images.get(entry.entry_id), now)
    if first:
        feed.primed_at = now
    return outcome


def _new_row(session: Session, feed: Feed, entry: Entry, now: datetime) -> FeedEntry:
    row = FeedEntry(
        feed_id=feed.id,
        entry_id=entry.entry_id,
        title=entry.title[:500],
        link=entry.link[:1000],
        content_hash=entry.content_hash,
        first_seen_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _fields(entry: Entry, image_url: str) -> dict[str, str]:
    return {
        "post_url": entry.link,
        "title": entry.title or "New post",
        "excerpt": entry.summary,
        "image_url": image_url,
    }


def alert_hash(alert: Alert) -> str:
    """A fingerprint of what an editor can change in an alert's content."""
    data = json.dumps([alert.subject, alert.name, alert.fields], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def _make_alert(
    session: Session,
    feed: Feed,
    entry: Entry,
    row: FeedEntry,
    image: tuple[str, str],
    now: datetime,
) -> Alert | None:
    """A draft new-post alert from the entry, scheduled when the feed sends automatically."""
    image_url, row.note = image
    lists = list(
        session.scalars(select(MailingList.id).where(MailingList.id.in_(feed.auto_send_lists)))
    )
    title = entry.title or "New post"
    draft = campaigns.Draft(
        kind=AlertKind.NEW_POST.value,
        subject=title,
        name=f"New post: {title}"[:200],
        fields=_fields(entry, image_url),
        lists=lists,
    )
    try:
        with session.begin_nested():
            alert = campaigns.create_draft(session, None, draft)
    except ValidationError as exc:
        row.note = NOT_MADE % {"problems": "; ".join(exc.errors.values())}
        return None
    alert.feed_entry_id = row.id
    if feed.auto_send and lists:
        alert.status = AlertStatus.SCHEDULED
        alert.scheduled_at = now + timedelta(minutes=feed.auto_send_delay_minutes)
        alert.status_reason = reasons.stored(reasons.FEED_SCHEDULED, feed=feed.name)
        audit.record(
            session, None, "alert.schedule", f"alert:{alert.id}",
            at=alert.scheduled_at.isoformat(), feed=feed.id,
        )  # fmt: skip
    session.flush()
    row.alert_hash = alert_hash(alert)
    return alert


def _apply_edit(
    session: Session,
    row: FeedEntry,
    entry: Entry,
    image: tuple[str, str] | None,
    now: datetime,
) -> int:
    """Record an edited entry; update its alert if that is safe. Returns 1 if it was updated."""
    row.title, row.link = entry.title[:500], entry.link[:1000]
    row.content_hash, row.updated_at = entry.content_hash, now
    alert = session.scalar(select(Alert).where(Alert.feed_entry_id == row.id).limit(1))
    if alert is None:
        return 0
    if alert.status not in EDITABLE or alert_hash(alert) != row.alert_hash:
        row.note = KEPT_AS_CHANGED
        return 0
    image_url, note = image or ((alert.fields or {}).get("image_url", ""), "")
    try:
        fields = kinds.validate_fields(
            AlertKind.NEW_POST, {**(alert.fields or {}), **_fields(entry, image_url)}
        )
    except ValidationError as exc:
        row.note = KEPT % {"problems": "; ".join(exc.errors.values())}
        return 0
    title = entry.title or "New post"
    alert.subject, alert.name, alert.fields = title, f"New post: {title}"[:200], fields
    session.flush()
    row.alert_hash = alert_hash(alert)
    row.note = note or UPDATED
    return 1
