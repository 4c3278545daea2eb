"""What comes back: bounces and complaints with their evidence, clicks and opens."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db import Base, utcnow
from clarion.models._types import BigId, Timestamp, str_enum


class BounceClass(enum.StrEnum):
    """How an inbound report is classified."""

    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"
    SENDER_FAULT = "sender_fault"
    DELAY = "delay"
    AUTOREPLY = "autoreply"
    NOT_A_BOUNCE = "not_a_bounce"


class Bounce(Base):
    """One classified report about one recipient, with the action taken and the evidence."""

    __tablename__ = "bounces"
    __table_args__ = (
        Index("ix_bounces_email_time", "email", "received_at"),
        # A soft bounce counts at most once a (UTC) day per address: the second of a day
        # finds its date taken, whichever worker records it.
        Index("ux_bounces_counted_day", "email", "counted_on", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    source: Mapped[str] = mapped_column(String(32))  # smtp, imap, ses, mailgun, sendgrid, ...
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), default="")
    classification: Mapped[BounceClass] = mapped_column(str_enum(BounceClass))
    status_code: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(String(32), default="")  # suppressed, counted, ignored
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    counted_on: Mapped[date | None] = mapped_column(Date)  # the day a soft bounce counted for
    # The returned message, kept as evidence for a limited time then purged.
    evidence: Mapped[bytes | None] = mapped_column(LargeBinary)


class Click(Base):
    """A reader followed link n of an alert; scanner-like clicks are flagged, not dropped."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_alert", "alert_id", "link_index"),
        # Deleting a delivery cascades to its clicks: without this, every deleted ledger row
        # scans the clicks table (retention of 1M rows ran for many minutes).
        Index("ix_clicks_delivery", "delivery_id"),
        # A reader's clicks, and "clicked lately" read from the index alone (migration 0024).
        Index("ix_clicks_reader", "subscriber_id", "clicked_at", "suspected_scanner"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL")
    )
    link_index: Mapped[int] = mapped_column(Integer)
    clicked_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    suspected_scanner: Mapped[bool] = mapped_column(Boolean, default=False)
    # Redis stream entry id: makes the batched flush idempotent.
    event_id: Mapped[str | None] = mapped_column(String(40), unique=True)


class ClickCount(Base):
    """Clicks of one link of an alert, aggregated from per-reader rows once they are old
    enough (clarion.retention): the figure stays, who clicked goes."""

    __tablename__ = "click_counts"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    link_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    # Readers among `clicks` (each aggregation counts its own; a sum over runs may count one
    # reader twice, rarely: clicks come days, not months, after a mail).
    unique_clicks: Mapped[int] = mapped_column(Integer, default=0)
    scanner_clicks: Mapped[int] = mapped_column(Integer, default=0)


class Open(Base):
    """An open, only when an owner has turned open tracking on; shown as approximate."""

    __tablename__ = "opens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Redis stream entry id, as for clicks: opens are buffered and flushed the same way.
    event_id: Mapped[str | None] = mapped_column(String(40), unique=True)


class InboundMessage(Base):
    """A raw inbound message stored durably before it is acknowledged, until processed."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    source: Mapped[str] = mapped_column(String(32))
    envelope_to: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Where it came from, for de-duplication: an IMAP message, a webhook body's hash.
    source_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    processed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(300), default="")
    error: Mapped[str] = mapped_column(Text, default="")


class AdminNotice(Base):
    """Something the owners must act on, shown on the dashboard until dismissed (our sending
    refused for policy or reputation reasons); repeats of one kind for one alert add up."""

    __tablename__ = "admin_notices"
    __table_args__ = (Index("ix_admin_notices_open", "dismissed_at", "kind", "alert_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    dismissed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("editors.id", ondelete="SET NULL")
    )
