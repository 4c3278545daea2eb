"""The audit log: who did which sensitive thing, to what, from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.models import AuditEvent, Editor
from clarion.paging import Page, keyset_page


def record(
    session: Session,
    editor: Editor | None,
    action: str,
    target: str = "",
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one event; it commits with the action it describes, or not at all."""
    event = AuditEvent(
        editor_id=editor.id if editor else None,
        editor_email=editor.email if editor else "",
        action=action,
        target=target[:200],
        detail=detail,
        ip=ip,
    )
    session.add(event)
    return event


def actions(session: Session) -> list[str]:
    """The kinds of event recorded so far, for the filter."""
    return sorted(session.scalars(select(AuditEvent.action).distinct()))


def page(
    session: Session,
    action: str | None = None,
    after: int | None = None,
    before: int | None = None,
) -> Page[AuditEvent]:
    """Events newest first, optionally of one kind."""
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
    return keyset_page(session, query, AuditEvent.id, lambda e: e.id, after=after, before=before)
