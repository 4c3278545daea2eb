"""Petitions and their signatures; feeds and the entries seen; background jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db import Base, utcnow
from clarion.models._types import BigId, Json, Timestamp, new_uid


class Petition(Base):
    """A petition with its public page."""

    __tablename__ = "petitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body_md: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(String(300), default="")
    goal: Mapped[int] = mapped_column(Integer, default=0)
    raise_goal: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline: Mapped[datetime | None] = mapped_column(Timestamp)
    image_url: Mapped[str] = mapped_column(String(1000), default="")
    # What the image shows, for readers who cannot see it (page and mail); empty: decorative.
    image_alt: Mapped[str] = mapped_column(String(300), default="", server_default="")
    require_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class Signature(Base):
    """One person's signature, at most one per normalised address per petition."""

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("petition_id", "email"),
        Index("ix_signatures_time", "petition_id", "created_at"),
        # A petition alert leaves out its signers, matched by subscriber id (and by address,
        # on the unique constraint above).
        Index("ix_signatures_subscriber", "petition_id", "subscriber_id"),
        # Segments ask about any petition: "signed one", "gave country C on one".
        Index("ix_signatures_reader", "subscriber_id"),
        Index("ix_signatures_email", "email"),
        # Only the few signatures whose confirmation mail is still owed (the mail sweep's).
        Index(
            "ix_signatures_mail_due",
            "mail_due_at",
            postgresql_where=text("mail_due_at IS NOT NULL"),
            sqlite_where=text("mail_due_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    # The page's language when they signed: their confirmation mail's language (None: default).
    language: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str | None] = mapped_column(String(64))
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # As ConsentRecord.mail_due_at: set while the confirmation mail is owed.
    mail_due_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Feed(Base):
    """An RSS or Atom feed of the blog, polled for new posts."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(1000), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # Claimed by the poll that set it: also the lock that keeps two pollers apart.
    last_polled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The first successful poll: what it found was marked seen, so adding a feed never floods.
    primed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_success_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(Timestamp)
    auto_send: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_send_lists: Mapped[list[int]] = mapped_column(Json, default=list)
    auto_send_delay_minutes: Mapped[int] = mapped_column(Integer, default=60)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class FeedEntry(Base):
    """An entry seen in a feed, by its id, so that no post makes two alerts."""

    __tablename__ = "feed_entries"
    __table_args__ = (UniqueConstraint("feed_id", "entry_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(500), default="")
    link: Mapped[str] = mapped_column(String(1000), default="")
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # Hash of what the poller last wrote into the entry's alert: if the alert still matches,
    # no editor has touched it and an edited entry may update it.
    alert_hash: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")  # e.g. why the image was left out
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    """A background import or export with its progress and results."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    kind: Mapped[str] = mapped_column(String(32))  # import, export
    status: Mapped[str] = mapped_column(String(16), default="queued")
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    input_path: Mapped[str] = mapped_column(String(1000), default="")
    result_path: Mapped[str] = mapped_column(String(1000), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
