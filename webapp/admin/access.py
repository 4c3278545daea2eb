"""Role checks for admin views: every view names the permission it needs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask_login import current_user, login_required

from clarion import editors
from clarion.models import Editor


def current_editor() -> Editor:
    """The logged-in editor."""
    return current_user.editor


def requires(permission: str) -> Callable:
    """Log in first, then refuse with 403 (and change nothing) unless the role allows it."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            editors.require(current_editor(), permission)
            return view(*args, **kwargs)

        return wrapped

    return decorate
