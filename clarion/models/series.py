"""Series (automations): a trigger, a goal, steps that are alerts, and the readers in each."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db import Base, utcnow
from clarion.models._types import BigId, Json, Timestamp, str_enum


class SeriesTrigger(enum.StrEnum):
    """What makes a reader enter a series."""

    JOINED = "joined"  # confirmed a subscription to the series' list
    SIGNED = "signed"  # a signature on the petition came to count
    CLICKED = "clicked"  # clicked a link of the alert


class SeriesStatus(enum.StrEnum):
    """An active series sends its steps as they fall due; a paused one lets its readers wait."""

    ACTIVE = "active"
    PAUSED = "paused"


class EntryState(enum.StrEnum):
    """Where a reader stands in a series."""

    ACTIVE = "active"
    FINISHED = "finished"  # had every step
    LEFT = "left"  # unsubscribed from the list, or suppressed
    GOAL = "goal"  # met the series' goal


class Series(Base):
    """An automation: readers enter on the trigger and get its steps after their delays."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The list whose subscribers it writes to, and whose sender identity it uses; for
    # JOINED it is also the trigger.
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    trigger: Mapped[SeriesTrigger] = mapped_column(str_enum(SeriesTrigger))
    petition_id: Mapped[int | None] = mapped_column(ForeignKey("petitions.id", ondelete="SET NULL"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    # A condition tree (clarion.alerts.segments): readers who meet it leave with state GOAL.
    goal: Mapped[dict[str, Any] | None] = mapped_column(Json)
    status: Mapped[SeriesStatus] = mapped_column(
        str_enum(SeriesStatus), default=SeriesStatus.PAUSED
    )
    # The list's welcome mail, chosen on the list's page (clarion.series.welcome): one per list.
    welcome: Mapped[bool] = mapped_column(Boolean, default=False)
    # Ticks so far: each tick marks the entries it moves with its number.
    ticks: Mapped[int] = mapped_column(BigInteger, default=0)
    # The last click of the trigger alert already turned into entries.
    seen_click_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class SeriesStep(Base):
    """One step: an alert (role series_step, frozen once ready) sent `delay_seconds` after the
    previous step (or the entry), to readers who meet its optional condition tree."""

    __tablename__ = "series_steps"
    __table_args__ = (UniqueConstraint("series_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="RESTRICT"), index=True)
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    conditions: Mapped[dict[str, Any] | None] = mapped_column(Json)


class SeriesEntry(Base):
    """A reader in a series: the next step and since when they wait for it."""

    __tablename__ = "series_entries"
    __table_args__ = (
        UniqueConstraint("series_id", "subscriber_id", "trigger_key"),
        Index("ix_series_entries_due", "series_id", "state", "next_step", "step_since"),
        Index("ix_series_entries_tick", "series_id", "tick"),
        Index("ix_series_entries_subscriber", "subscriber_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    # What they entered by ("list:3", "petition:5", "alert:7"): once per trigger.
    trigger_key: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    next_step: Mapped[int] = mapped_column(Integer, default=0)  # index among the ordered steps
    # Since when they wait for next_step: it is due at step_since + that step's delay, read
    # at each tick, so a future step's new delay applies to those already waiting.
    step_since: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    state: Mapped[EntryState] = mapped_column(str_enum(EntryState), default=EntryState.ACTIVE)
    tick: Mapped[int] = mapped_column(BigInteger, default=0)  # the tick that moved it last
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
