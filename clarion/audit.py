"""The audit log: who did which sensitive thing, to what, from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from clarion.models import AuditEvent, Editor


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
