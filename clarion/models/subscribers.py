"""Readers, the lists they join, their subscriptions, consent records and the suppression list."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from clarion.db import Base, utcnow
from clarion.models._types import BigId, Json, Timestamp, new_uid, str_enum


class SubscriptionStatus(enum.StrEnum):
    """Where a reader stands on one list."""

    PENDING = "pending"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class SuppressionReason(enum.StrEnum):
    """Why an address gets no mail at all."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    ERASED = "erased"  # the reader was erased: only the keyed hash of the address is kept


class Subscriber(Base):
    """One reader, known by a normalised address and a random public uid."""

    __tablename__ = "subscribers"
    # Substring search in the admin: trigram indexes on PostgreSQL. SQLite has no such index;
    # migration 0002 gives it empty stand-ins of the same names so the schema matches.
    __table_args__ = (
        Index(
            "ix_subscribers_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
        Index(
            "ix_subscribers_name_search_trgm",
            "name_search",
            postgresql_using="gin",
            postgresql_ops={"name_search": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # The name in lower case for search; SQLite's lower() and LIKE know only ASCII.
    name_search: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan"
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary="subscriber_tags", back_populates="subscribers"
    )

    @validates("name")
    def _keep_name_search(self, _key: str, value: str | None) -> str | None:
        self.name_search = search_form(value)
        return value

    def __repr__(self) -> str:
        return f"<Subscriber {self.id}>"


def search_form(name: str | None) -> str | None:
    """How a name is stored for case-insensitive search in every script."""
    return name.lower() if name else None


class MailingList(Base):
    """A list readers can join; its sender identity is used for the alerts sent to it."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    from_name: Mapped[str | None] = mapped_column(String(200))
    from_email: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # Unused since 0019: a list's welcome mail is a one-step series (clarion.series.welcome).
    # Kept so that a downgrade can restore it: dropping it in SQLite means rebuilding `lists`,
    # whose DROP would cascade to the subscriptions with foreign keys on.
    welcome_alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="mailing_list")


class Subscription(Base):
    """A reader's standing on one list, with the times it changed."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "list_id"),
        # Unique as the constraint above makes it anyway: SQLite's planner then probes it for
        # "on one of these lists" (an index alone), where it took the constraint's index and
        # read every subscription row for its status (migration 0024).
        Index("ix_subscriptions_audience", "list_id", "status", "subscriber_id", unique=True),
        # Keyset paging of the admin's subscriber list, filtered by list or by status.
        Index("ix_subscriptions_list_subscriber", "list_id", "subscriber_id"),
        Index("ix_subscriptions_status_subscriber", "status", "subscriber_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        str_enum(SubscriptionStatus), default=SubscriptionStatus.PENDING
    )
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    subscribed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship(back_populates="subscriptions")


class ConsentRecord(Base):
    """Proof of consent: what the reader agreed to, when, from where, and its confirmation.

    When a reader is erased their records stay as anonymous proof: no subscriber, no details,
    no IP address, only the time, the lists and the keyed hash of the address."""

    __tablename__ = "consent_records"
    __table_args__ = (
        # Only the few records whose confirmation mail is still owed (the mail sweep's).
        Index(
            "ix_consent_records_mail_due",
            "mail_due_at",
            postgresql_where=text("mail_due_at IS NOT NULL"),
            sqlite_where=text("mail_due_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    email_hash: Mapped[str | None] = mapped_column(String(32))
    # subscribe, resubscribe, import, petition; or a withdrawal: unsubscribe, complaint
    action: Mapped[str] = mapped_column(String(32))
    list_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    # Name and language asked for, applied only once the address owner confirms.
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    source: Mapped[str | None] = mapped_column(String(64))
    form: Mapped[str | None] = mapped_column(String(64))
    consent_text: Mapped[str] = mapped_column(Text, default="")
    consent_version: Mapped[str] = mapped_column(String(32), default="")
    confirm_nonce: Mapped[str | None] = mapped_column(String(32), unique=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    confirm_ip: Mapped[str | None] = mapped_column(String(45))
    # While its confirmation mail is owed: when the mail sweep should queue it again if no
    # task has sent it by then (a lost task, retries run out). NULL once sent or given up.
    mail_due_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Suppression(Base):
    """An address that receives nothing, with why and the evidence.

    `email_hash` is the keyed hash of the address (clarion.throttle.address_key); rows of an
    erased reader keep only that, so a re-import or a sign-up still finds them."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_hash: Mapped[str | None] = mapped_column(String(32), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(str_enum(SuppressionReason))
    detail: Mapped[str] = mapped_column(Text, default="")
    bounce_id: Mapped[int | None] = mapped_column(ForeignKey("bounces.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Tag(Base):
    """A free label editors put on subscribers to shape audiences."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    subscribers: Mapped[list[Subscriber]] = relationship(
        secondary="subscriber_tags", back_populates="tags"
    )


class SubscriberTag(Base):
    """Association of subscribers and tags."""

    __tablename__ = "subscriber_tags"
    __table_args__ = (Index("ix_subscriber_tags_tag", "tag_id", "subscriber_id"),)

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)


class AppSetting(Base):
    """Owner-editable settings kept in the database (open tracking, bounce policy, ...)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
