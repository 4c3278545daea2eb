"""The admin: editors log in to compose, send and watch."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask_login import current_user

from clarion import editors, i18n
from clarion.alerts import freeze, kinds, reasons
from clarion.bounces import policy
from clarion.delivery import owed
from clarion.feeds import poll

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


@bp.app_template_filter("frozen")
def frozen_text(text: str | None) -> str:
    """A frozen subject with its personalisation fields as the editor wrote them."""
    return freeze.shown(text or "")


@bp.app_template_filter("kind_label")
def kind_label(kind: object) -> str:
    """An alert kind's name in the editor's words."""
    spec = kinds.KINDS.get(kind)
    return i18n.admin_gettext(spec.label) if spec else str(kind)


# Texts the domain stores in English (for the API and the command line) and the admin shows in
# the editor's words: status reasons, notices, feed notes.
STORED_TEXTS = (*reasons.KNOWN, policy.NOTICE_TITLE, owed.LATE_TITLE, *poll.NOTES)


@bp.app_template_filter("stored")
def stored_text(text: str | None) -> str:
    """A stored English text in the editor's words when it is one the admin knows."""
    return i18n.admin_stored(text or "", STORED_TEXTS)


from webapp.admin import (  # noqa: E402, F401
    account,
    alerts,
    api_tokens,
    audit_log,
    auth,
    bounces,
    composer,
    dashboard,
    editors_admin,
    feeds,
    followups,
    hashtag_plans,
    identity_settings,
    jobs,
    lists,
    outbox,
    petitions,
    privacy,
    repermission,
    segments,
    sending,
    series,
    stats,
    subscribers,
    tags,
    webhooks,
)
