"""Housekeeping: forget what Clarion no longer needs to keep."""

from __future__ import annotations

from clarion import retention
from clarion.db import session_scope
from tasks import app


@app.task
def purge_expired() -> dict[str, int]:
    """Delete never-confirmed sign-ups and old bounce evidence."""
    with session_scope() as session:
        return retention.purge_expired(session)
