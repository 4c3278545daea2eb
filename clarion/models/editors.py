"""Editors who log in, their roles, and the audit log of what they did."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db import Base, utcnow
from clarion.models._types import BigId, Json, Timestamp, str_enum


class Role(enum.StrEnum):
    """What an editor may do: owners manage everything, viewers only look."""

    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class Editor(Base):
    """A person who logs in to the admin."""

    __tablename__ = "editors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.EDITOR)
    # Both secrets are Fernet tokens under a key derived from CLARION_SECRET_KEY (never base32).
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    # Shown as a QR code while enrolling; becomes totp_secret once a code from it is confirmed.
    totp_pending_secret: Mapped[str | None] = mapped_column(String(255))
    # The TOTP time step of the last code accepted: a code is good once, never twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The admin's language for this editor; None: the instance default if the admin speaks it.
    language: Mapped[str | None] = mapped_column(String(8))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    # Bumped on password or role change so that old sessions stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp)


class AuditEvent(Base):
    """One sensitive action, who did it and on what; kept for owners to read."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action", "action", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    editor_email: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))
