"""The admin: editors log in to compose, send and watch."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask_login import current_user

from clarion import editors

bp = Blueprint("admin", __name__)


@bp.app_context_processor
def _permissions() -> dict:
    def can(permission: str) -> bool:
        return bool(current_user.is_authenticated) and editors.can(current_user.editor, permission)

    return {"can": can}


@bp.app_template_filter("local")
def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time shown in the logged-in editor's zone."""
    if moment is None:
        return ""
    zone = current_user.editor.timezone if current_user.is_authenticated else "UTC"
    return moment.astimezone(ZoneInfo(zone)).strftime(fmt)


from webapp.admin import (  # noqa: E402, F401
    account,
    alerts,
    api_tokens,
    audit_log,
    auth,
    bounces,
    dashboard,
    editors_admin,
    feeds,
    hashtag_plans,
    jobs,
    lists,
    outbox,
    petitions,
    privacy,
    sending,
    stats,
    subscribers,
    tags,
    webhooks,
)
