"""Writes the clicks and opens buffered in Redis to the database, in batches."""

from __future__ import annotations

from clarion.tracking import eventstream
from tasks import app


@app.task
def flush_events() -> int:
    """Flush what is buffered now; several runs at once are safe. Returns events written."""
    return eventstream.flush().events
