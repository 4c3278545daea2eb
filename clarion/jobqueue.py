"""The port through which the domain asks for background work, by task name.

The domain may not import Celery, yet the delivery engine must hand out its own follow-up work
(the next batches, a wake-up when a retry falls due). It names the task; the adapter that owns
the queue (tasks/, which registers itself on import) publishes it. Tests register their own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

# name, positional args, countdown in seconds (None: now)
Backend = Callable[[str, Sequence[Any], float | None], None]

_backend: Backend | None = None


class QueueUnavailable(Exception):
    """The task could not be published: the broker is unreachable (the sweep retries)."""


# The adapter package that registers the production backend when imported.
DEFAULT_ADAPTER = "tasks"


def set_backend(backend: Backend | None) -> Backend | None:
    """Register how tasks are published; returns the backend it replaces."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def enqueue(name: str, *args: Any, countdown: float | None = None) -> None:
    """Publish task `name` with `args`, to run now or after `countdown` seconds."""
    if _backend is None:
        # A process that never imported the adapter (the CLI): load it by name, which keeps
        # the import contracts — the domain depends on this port, not on Celery.
        importlib.import_module(DEFAULT_ADAPTER)
    if _backend is None:
        raise RuntimeError(f"no task queue registered (importing {DEFAULT_ADAPTER} did not)")
    _backend(name, tuple(args), countdown)
