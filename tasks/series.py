"""Thin task of the series (automations): the beat's tick."""

from __future__ import annotations

from clarion.series import tick as series_tick
from tasks import app


@app.task(acks_late=True)
def tick() -> int:
    """Periodic: move the readers whose series step fell due into its ledger; how many."""
    return sum(len(ids) for _alert, ids in series_tick.tick())
