"""The audit log: who did which sensitive thing, to what, from where."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from clarion.db import utcnow
from clarion.i18n import NA_, admin_gettext
from clarion.models import AuditEvent
from clarion.paging import Page, keyset_page

# Each kind of event in the editor's words; the code stays what is stored, filtered and exported.
ACTIONS = {
    "alert.cancel": NA_("Alert cancelled"),
    "alert.create": NA_("Alert created"),
    "alert.delete": NA_("Draft deleted"),
    "alert.duplicate": NA_("Alert duplicated"),
    "alert.pause": NA_("Sending paused"),
    "alert.plan": NA_("Hashtag day alert planned"),
    "alert.resume": NA_("Sending resumed"),
    "alert.schedule": NA_("Alert scheduled"),
    "alert.schedule_failed": NA_("Scheduled send did not start"),
    "alert.send": NA_("Sending started"),
    "alert.send_unreached": NA_("Sent to those not reached yet"),
    "alert.test_send": NA_("Test sent"),
    "alert.unplan": NA_("Hashtag day alert unplanned"),
    "alert.unschedule": NA_("Alert unscheduled"),
    "api_token.create": NA_("API token created"),
    "api_token.revoke": NA_("API token revoked"),
    "editor.create": NA_("Editor created"),
    "editor.deactivate": NA_("Editor deactivated"),
    "editor.language": NA_("Admin language changed"),
    "editor.locked": NA_("Editor locked out"),
    "editor.login": NA_("Logged in"),
    "editor.password": NA_("Password changed"),
    "editor.password_reset": NA_("Password reset"),
    "editor.reactivate": NA_("Editor reactivated"),
    "editor.role": NA_("Role changed"),
    "editor.totp_off": NA_("Two-factor login turned off"),
    "editor.totp_on": NA_("Two-factor login turned on"),
    "editor.unlock": NA_("Editor unlocked"),
    "feed.create": NA_("Feed added"),
    "feed.delete": NA_("Feed deleted"),
    "feed.update": NA_("Feed changed"),
    "list.create": NA_("List created"),
    "list.update": NA_("List changed"),
    "list.welcome": NA_("Welcome alert set"),
    "notice.dismiss": NA_("Notice dismissed"),
    "petition.create": NA_("Petition created"),
    "petition.delete": NA_("Petition deleted"),
    "petition.export": NA_("Signatures exported"),
    "petition.update": NA_("Petition changed"),
    "series.create": NA_("Series created"),
    "series.pause": NA_("Series paused"),
    "series.resume": NA_("Series started"),
    "series.step": NA_("Series step changed"),
    "series.update": NA_("Series changed"),
    "settings.bounce_policy": NA_("Bounce policy changed"),
    "settings.identity": NA_("Campaign identity changed"),
    "settings.open_tracking": NA_("Open tracking changed"),
    "subscriber.delete": NA_("Subscriber deleted"),
    "subscriber.erase_self": NA_("Reader erased their data"),
    "subscriber.tags": NA_("Subscriber's tags changed"),
    "subscribers.export": NA_("Subscribers exported"),
    "subscribers.export_download": NA_("Subscriber export downloaded"),
    "suppression.lift": NA_("Suppression lifted"),
    "tag.attach": NA_("Tag added to subscribers"),
    "tag.create": NA_("Tag created"),
    "tag.delete": NA_("Tag deleted"),
    "tag.detach": NA_("Tag removed from subscribers"),
}
API_ACTION = "api."


# Built once per process: the API writes one on every change (bench/README.md, API).
_INSERT = insert(AuditEvent.__table__)


class Actor(Protocol):
    """What the log keeps of whoever acted: an Editor, or the columns of one."""

    id: int
    email: str


def record(
    session: Session,
    editor: Actor | None,
    action: str,
    target: str = "",
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Append one event; it commits with the action it describes, or not at all."""
    # A Core INSERT now rather than an ORM object flushed later: the same row in the same
    # transaction, without the unit of work's cost on every API write.
    values = {
        "at": utcnow(),
        "editor_id": editor.id if editor else None,
        "editor_email": editor.email if editor else "",
        "action": action,
        "target": target[:200],
        "detail": detail,
        "ip": ip,
    }
    session.execute(_INSERT, values)


def action_label(action: str) -> str:
    """The kind of an event in the editor's words (the code itself when it is not known)."""
    if action in ACTIONS:
        return admin_gettext(ACTIONS[action])
    if action.startswith(API_ACTION):
        return admin_gettext("API: %(operation)s", operation=action.removeprefix(API_ACTION))
    return action


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
