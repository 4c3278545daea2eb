"""Blog feeds as editors manage them: address, name, and the automatic sending of new posts.

Polling lives in clarion.feeds.poll. An automatic send is an ordinary scheduled alert: until its
time comes an editor can cancel it (it goes back to draft) from the feed's page or the alert's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from clarion import audit
from clarion.alerts import campaigns, reasons
from clarion.db import utcnow
from clarion.editors import require
from clarion.errors import InvalidTransition, NotFound, ValidationError
from clarion.i18n import admin_gettext
from clarion.models import Alert, AlertStatus, Editor, Feed, FeedEntry, MailingList

MIN_DELAY_MINUTES = 5  # time enough to notice a post that should not go out
MAX_DELAY_MINUTES = 7 * 24 * 60
MANUAL_POLL_GAP = timedelta(seconds=10)  # "Check now" pressed twice fetches once


def all_feeds(session: Session) -> list[Feed]:
    """Every feed, by name."""
    return list(session.scalars(select(Feed).order_by(Feed.name, Feed.id)))


def get_feed(session: Session, feed_id: int) -> Feed:
    """The feed with this id, or NotFound."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFound(admin_gettext("No such feed."))
    return feed


def _check_url(raw: str, errors: dict[str, str]) -> str:
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        errors["url"] = admin_gettext(
            "Give the feed's full address, like https://blog.example.org/feed/."
        )
    elif parts.username or parts.password:
        errors["url"] = admin_gettext("Leave the user name and password out of the address.")
    elif len(url) > 1000:
        errors["url"] = admin_gettext("Keep the address under 1000 characters.")
    return url


def _check_delay(raw: Any, errors: dict[str, str]) -> int:
    try:
        delay = int(str(raw).strip())
    except ValueError:
        errors["auto_send_delay_minutes"] = admin_gettext("Give the delay in whole minutes.")
        return MIN_DELAY_MINUTES
    if not MIN_DELAY_MINUTES <= delay <= MAX_DELAY_MINUTES:
        errors["auto_send_delay_minutes"] = admin_gettext(
            "Between %(minutes)s minutes and %(days)s days, so that an editor has time to cancel.",
            minutes=MIN_DELAY_MINUTES,
            days=MAX_DELAY_MINUTES // 1440,
        )
    return delay


def clean(session: Session, raw: Mapping[str, Any], current: Feed | None) -> dict[str, Any]:
    """The form's values checked at once; ValidationError maps each bad field to what to fix."""
    errors: dict[str, str] = {}
    url = _check_url(str(raw.get("url", "")), errors)
    if "url" not in errors:
        taken = session.scalar(select(Feed.id).where(Feed.url == url))
        if taken is not None and (current is None or taken != current.id):
            errors["url"] = admin_gettext("This feed is already here.")
    name = " ".join(str(raw.get("name", "")).split()) or (urlsplit(url).hostname or "")
    if len(name) > 200:
        errors["name"] = admin_gettext("Keep the name under 200 characters.")
    lists = sorted({int(i) for i in raw.get("auto_send_lists") or []})
    known = set(session.scalars(select(MailingList.id).where(MailingList.id.in_(lists))))
    if known != set(lists):
        errors["auto_send_lists"] = admin_gettext("One of the chosen lists no longer exists.")
    auto_send = bool(raw.get("auto_send"))
    if auto_send and not lists:
        errors["auto_send_lists"] = admin_gettext("Choose the lists new posts are sent to.")
    delay = _check_delay(raw.get("auto_send_delay_minutes", 60), errors)
    if errors:
        raise ValidationError(errors)
    return {
        "url": url,
        "name": name,
        "enabled": bool(raw.get("enabled", True)),
        "auto_send": auto_send,
        "auto_send_lists": lists,
        "auto_send_delay_minutes": delay,
    }


def create_feed(
    session: Session, editor: Editor, raw: Mapping[str, Any], ip: str | None = None
) -> Feed:
    """Add a feed. Its first poll only marks what is there as seen: adding never floods."""
    require(editor, "compose")
    values = clean(session, raw, None)
    if values["auto_send"]:
        require(editor, "send")
    feed = Feed(**values)
    session.add(feed)
    session.flush()
    audit.record(session, editor, "feed.create", f"feed:{feed.id}", ip, url=feed.url)
    return feed


def update_feed(
    session: Session, editor: Editor, feed: Feed, raw: Mapping[str, Any], ip: str | None = None
) -> None:
    """Change a feed; a new address starts afresh (its first poll again only marks entries seen)."""
    require(editor, "compose")
    values = clean(session, raw, feed)
    if values["auto_send"] and not feed.auto_send:
        require(editor, "send")
    if values["url"] != feed.url:
        feed.etag = feed.last_modified = feed.primed_at = feed.last_polled_at = None
    for key, value in values.items():
        setattr(feed, key, value)
    audit.record(session, editor, "feed.update", f"feed:{feed.id}", ip, **values)


def delete_feed(session: Session, editor: Editor, feed: Feed, ip: str | None = None) -> None:
    """Remove a feed and what it has seen; alerts made from it stay as they are."""
    require(editor, "compose")
    audit.record(session, editor, "feed.delete", f"feed:{feed.id}", ip, url=feed.url)
    session.delete(feed)


def claim_now(session: Session, feed: Feed) -> bool:
    """Claim the feed for a poll now ("Check now", or a new feed); False if one just ran."""
    now = utcnow()
    claimed = session.execute(
        update(Feed)
        .where(
            Feed.id == feed.id,
            or_(Feed.last_polled_at.is_(None), Feed.last_polled_at <= now - MANUAL_POLL_GAP),
        )
        .values(last_polled_at=now)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1  # type: ignore[attr-defined]


def recent_entries(
    session: Session, feed: Feed, limit: int = 30
) -> list[tuple[FeedEntry, Alert | None]]:
    """The entries seen most recently, each with the alert made from it (if any)."""
    rows = session.execute(
        select(FeedEntry, Alert)
        .outerjoin(Alert, Alert.feed_entry_id == FeedEntry.id)
        .where(FeedEntry.feed_id == feed.id)
        .order_by(FeedEntry.first_seen_at.desc(), FeedEntry.id.desc())
        .limit(limit)
    )
    return [(entry, alert) for entry, alert in rows]


def pending_sends(session: Session, feed: Feed) -> list[Alert]:
    """Alerts from this feed waiting for their automatic send, soonest first."""
    return list(
        session.scalars(
            select(Alert)
            .join(FeedEntry, Alert.feed_entry_id == FeedEntry.id)
            .where(FeedEntry.feed_id == feed.id, Alert.status == AlertStatus.SCHEDULED)
            .order_by(Alert.scheduled_at)
        )
    )


def cancel_auto_send(
    session: Session, editor: Editor, feed: Feed, alert: Alert, ip: str | None = None
) -> None:
    """Stop an automatic send before it starts; the alert stays, as a draft."""
    entry = session.get(FeedEntry, alert.feed_entry_id) if alert.feed_entry_id else None
    if entry is None or entry.feed_id != feed.id:
        raise NotFound(admin_gettext("This alert did not come from this feed."))
    if alert.status != AlertStatus.SCHEDULED:
        raise InvalidTransition(
            admin_gettext(
                "This alert is %(status)s: there is nothing to cancel.",
                status=admin_gettext(alert.status.value),
            )
        )
    campaigns.unschedule(session, editor, alert, ip)
    alert.status_reason = reasons.stored(reasons.FEED_CANCELLED, who=editor.email)
