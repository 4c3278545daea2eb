"""Alerts (campaigns) editors compose, and the per-recipient delivery ledger."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clarion.db import Base, utcnow
from clarion.models._types import BigId, Json, Timestamp, new_uid, str_enum


class AlertKind(enum.StrEnum):
    """The four things Clarion sends; each has its own form and layout."""

    NEW_POST = "new_post"
    PETITION = "petition"
    HASHTAG_DAY = "hashtag_day"
    NEWSLETTER = "newsletter"


class AlertStatus(enum.StrEnum):
    """The life of an alert: draft → scheduled → sending → sent, or paused / cancelled."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class AlertRole(enum.StrEnum):
    """What an alert is to its parent: a follow-up, a hashtag day's announcement or reminder,
    or a list's welcome mail (sent to each reader who confirms), or a series' step (sent to
    each reader in the series as it falls due). Ordinary alerts have none."""

    NONE = ""
    UNREACHED = "unreached"
    ANNOUNCEMENT = "announcement"
    REMINDER = "reminder"
    WELCOME = "welcome"
    SERIES_STEP = "series_step"


class DeliveryStatus(enum.StrEnum):
    """One recipient's message: queued → sending → sent / deferred / failed, or skipped."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"


class Alert(Base):
    """An alert: its kind, its fields, its audience, and once started its frozen rendering."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_due", "status", "scheduled_at"),
        Index("ix_alerts_parent", "parent_id", "role"),
        Index("ix_alerts_feed_entry", "feed_entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind))
    name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    preheader: Mapped[str] = mapped_column(String(300), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # The primary language, which the fields above are written in ("": the instance default).
    language: Mapped[str] = mapped_column(String(8), default="")
    # Versions in other languages: {code: {"subject", "preheader", "fields", "unfinished"}}.
    translations: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # {"lists": [ids], "tags": [ids], "languages": [codes]}; lists are required to send.
    audience: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    sender_list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    status: Mapped[AlertStatus] = mapped_column(str_enum(AlertStatus), default=AlertStatus.DRAFT)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    archive_public: Mapped[bool] = mapped_column(Boolean, default=False)
    # An optional MJML layout replacing the kind's body.mjml (rendered in Jinja's sandbox).
    layout_mjml: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(32), default=AlertRole.NONE.value)  # see AlertRole
    feed_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("feed_entries.id", ondelete="SET NULL", use_alter=True)
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    # Frozen at start: what every recipient gets, whatever later edits do.
    frozen_subject: Mapped[str | None] = mapped_column(Text)
    frozen_html: Mapped[str | None] = mapped_column(Text)
    frozen_text: Mapped[str | None] = mapped_column(Text)
    frozen_links: Mapped[list[str]] = mapped_column(Json, default=list)
    frozen_hash: Mapped[str | None] = mapped_column(String(64))
    # The finished versions as frozen, beside the primary above: {code: {"subject", "html",
    # "text"}}; their tracked links share frozen_links.
    frozen_versions: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    frozen_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Sender, list and audience as they were at start: {"from", "reply_to", "list", "audience"}.
    frozen_meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # Readers a message went to without an answer, and who are sent it again: they may get two
    # copies (a worker killed mid-send, a connection broken after the body went out).
    possible_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    # Set when dispatch has written the whole ledger; until then the alert cannot finish.
    dispatched_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # A "stay subscribed?" mail (clarion.audience.repermission): its readers who neither press
    # "Yes, keep me" nor click anything within this many days of its start are unsubscribed.
    stay_days: Mapped[int | None] = mapped_column(Integer)
    # When those readers were unsubscribed (the deadline's work is done).
    stay_closed_at: Mapped[datetime | None] = mapped_column(Timestamp)

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="alert", viewonly=True)


class Delivery(Base):
    """The ledger: one row per (alert, subscriber), the single truth of who got what."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "subscriber_id"),
        Index("ix_deliveries_work", "alert_id", "status", "id"),
        # Segments' "received alert A": an index-only scan rather than a scan of the ledger.
        Index("ix_deliveries_audience", "alert_id", "status", "subscriber_id"),
        Index("ix_deliveries_subscriber", "subscriber_id"),
        # A returned original names its Message-ID: how a bounce without VERP finds its row.
        Index("ix_deliveries_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(255))
    server: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="deliveries")


class BatchState(enum.StrEnum):
    """A batch waits (pending, maybe until due_at), is handed to a worker (enqueued), or is done."""

    PENDING = "pending"
    ENQUEUED = "enqueued"
    DONE = "done"


class DeliveryBatch(Base):
    """A unit of sending work: the ledger rows first_id..last_id of one alert.

    At most a window of batches per alert is enqueued at a time, so the backlog lives here and
    not in the broker: a lost task or a wiped Redis costs nothing but a re-enqueue.
    """

    __tablename__ = "delivery_batches"
    __table_args__ = (Index("ix_delivery_batches_work", "alert_id", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[BatchState] = mapped_column(str_enum(BatchState), default=BatchState.PENDING)
    due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    enqueued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Identity of the Redis data set the task was published to (see delivery.redis_epoch).
    epoch: Mapped[str | None] = mapped_column(String(32))


class NoticeMail(Base):
    """One transactional mail sent (a confirmation, a data link, a test send): what its VERP
    token names, so that a bounce of it reaches the bounce policy. Kept EVIDENCE_DAYS (see
    clarion.retention), deleted with an erased reader."""

    __tablename__ = "notice_mails"
    __table_args__ = (Index("ix_notice_mails_created", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # confirm, signature_confirm, your_data, test
    email: Mapped[str] = mapped_column(String(320), index=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    reply: Mapped[str] = mapped_column(Text, default="")  # the server's last answer
    # A provider's webhook may name only our Message-ID.
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)


class FollowUp(Base):
    """An alert written to the recipients of a sent alert (its origin) who did not act:
    did not click it, did not sign a petition, did not share a hashtag day (its `rule`).

    A table of its own rather than columns on `alerts`: SQLite cannot add a foreign key to an
    existing table without copying it, and a copy of `alerts` would drop it under its ledgers."""

    __tablename__ = "follow_ups"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    origin_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(16))  # clarion.alerts.followups.RULES
    # The petition of a "did not sign" rule, or the hashtag day of "did not share".
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Stay(Base):
    """A reader who pressed "Yes, keep me" in a "stay subscribed?" mail (Alert.stay_days)."""

    __tablename__ = "stays"
    __table_args__ = (UniqueConstraint("alert_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Segment(Base):
    """A named condition tree (clarion.alerts.segments) that alerts reuse as their audience."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
