"""Follow-ups: a draft to the recipients of a sent alert who did not act on it.

Its audience is the origin's lists narrowed by conditions (clarion.alerts.segments): received
the origin, and did not click it / did not sign the petition / did not share the hashtag day.
Like any audience, the ledger is written from them when it starts: who acted before then is
left out, who acts afterwards still gets it, and who left or is suppressed never does. The
draft is the origin's content to edit; it may be scheduled at the origin's start plus a delay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.alerts import campaigns, petition_pick
from clarion.db import utcnow
from clarion.editors import require
from clarion.errors import InvalidTransition, ValidationError
from clarion.i18n import NA_, admin_gettext
from clarion.models import (
    Alert,
    AlertKind,
    AlertRole,
    AlertStatus,
    Editor,
    FollowUp,
    Petition,
)

# What a reader did not do, for the follow-up to reach them.
RULES = {
    "click": NA_("did not click any of its links"),
    "sign": NA_("did not sign the petition"),
    "share": NA_("did not share the hashtag day"),
}
# An alert that went out (or part of it, before it was cancelled) can be followed up.
FOLLOWABLE = (AlertStatus.SENT, AlertStatus.CANCELLED)
MAX_DELAY_HOURS = 60 * 24


def followable(alert: Alert) -> bool:
    """Whether the alert went out to readers, so that a follow-up can be written."""
    return (
        alert.status in FOLLOWABLE
        and alert.started_at is not None
        and alert.role != AlertRole.WELCOME.value
    )


def petition_of(alert: Alert) -> int | None:
    """The petition a petition alert picked, if any (the default of "did not sign")."""
    if alert.kind != AlertKind.PETITION:
        return None
    return petition_pick.picked_id(alert.fields or {})


def hashtag_day_of(session: Session, alert: Alert) -> int | None:
    """The hashtag day an alert belongs to: itself, or the day its announcement, reminder or
    follow-up to the unreached was planned for."""
    found: Alert | None = alert
    for _step in range(3):
        if found is None or found.kind != AlertKind.HASHTAG_DAY:
            return None
        if found.role == AlertRole.NONE.value or found.parent_id is None:
            return found.id
        found = session.get(Alert, found.parent_id)
    return None


def conditions(rule: str, origin_id: int, target_id: int | None) -> dict[str, Any]:
    """The follow-up's conditions: received the origin and did not do what the rule names."""
    acted = {
        "click": {"type": "clicked", "alert": origin_id},
        "sign": {"type": "signed", "petition": target_id},
        "share": {"type": "shared", "hashtag_day": target_id},
    }[rule]
    return {"all": [{"type": "received", "alert": origin_id}, {"not": acted}]}


def _target(
    session: Session, origin: Alert, rule: str, petition_id: int | None, errors: dict[str, str]
) -> int | None:
    """The petition or hashtag day the rule is about; faults go into `errors`."""
    if rule == "sign":
        target = petition_id or petition_of(origin)
        if target is None:
            errors["petition"] = admin_gettext("Choose the petition readers did not sign.")
        elif session.get(Petition, target) is None:
            errors["petition"] = admin_gettext(
                "Nothing with id %(id)s: it may have been deleted.", id=target
            )
        return target
    if rule == "share":
        target = hashtag_day_of(session, origin)
        if target is None:
            errors["rule"] = admin_gettext(
                "Only a hashtag day (or its announcement or reminder) has shares to follow up."
            )
        return target
    return None


def _check(rule: str, delay_hours: int | None, errors: dict[str, str]) -> None:
    if rule not in RULES:
        errors["rule"] = admin_gettext("Choose who gets it: %(rules)s.", rules=", ".join(RULES))
    if delay_hours is not None and not 1 <= delay_hours <= MAX_DELAY_HOURS:
        errors["delay_hours"] = admin_gettext(
            "Give the delay in hours, from 1 to %(max)s, or leave it empty.", max=MAX_DELAY_HOURS
        )


def create(
    session: Session,
    editor: Editor | None,
    origin: Alert,
    rule: str,
    *,
    petition_id: int | None = None,
    delay_hours: int | None = None,
    ip: str | None = None,
) -> Alert:
    """A draft of the origin's content to its recipients who did not act (the rule), linked to
    it; with a delay, scheduled at the origin's start plus that many hours."""
    if editor is not None:
        require(editor, "compose")
    if not followable(origin):
        raise InvalidTransition(
            admin_gettext(
                "Only an alert that went out can be followed up (this one is %(state)s).",
                state=admin_gettext(origin.status.value),
            )
        )
    errors: dict[str, str] = {}
    _check(rule, delay_hours, errors)
    target = _target(session, origin, rule, petition_id, errors) if not errors else None
    when = None
    if delay_hours is not None and not errors:
        when = origin.started_at + timedelta(hours=delay_hours)
        if when <= utcnow() + timedelta(seconds=30):
            errors["delay_hours"] = admin_gettext(
                "%(hours)s hours after it started has already passed: choose a longer delay, "
                "or none and schedule it yourself.",
                hours=delay_hours,
            )
    if errors:
        raise ValidationError(errors)
    alert = _draft(session, editor, origin, conditions(rule, origin.id, target))
    session.add(FollowUp(alert_id=alert.id, origin_id=origin.id, rule=rule, target_id=target))
    audit.record(session, editor, "alert.follow_up", f"alert:{alert.id}", ip,
                 origin=origin.id, rule=rule)  # fmt: skip
    if when is not None:
        campaigns.schedule_at(session, editor, alert, when, ip)
    return alert


def _draft(session: Session, editor: Editor | None, origin: Alert, tree: dict) -> Alert:
    """The origin's content as a new draft, to the lists it went to, with the conditions."""
    frozen = (origin.frozen_meta or {}).get("audience") or origin.audience or {}
    audience: dict[str, Any] = {"lists": list(frozen.get("lists", [])), "tags": [],
                                "languages": [], "conditions": tree}  # fmt: skip
    for key in ("skip_signers_of", "include_signers"):
        if key in (origin.audience or {}):
            audience[key] = origin.audience[key]
    name = admin_gettext("Follow-up: %(name)s", name=origin.name)
    alert = Alert(
        kind=origin.kind,
        name=name[:200],
        subject=origin.subject,
        preheader=origin.preheader,
        fields=dict(origin.fields or {}),
        audience=audience,
        sender_list_id=origin.sender_list_id,
        archive_public=origin.archive_public,
        layout_mjml=origin.layout_mjml,
        language=origin.language,
        translations={k: dict(v) for k, v in (origin.translations or {}).items()},
        status=AlertStatus.DRAFT,
        created_by_id=editor.id if editor else None,
    )
    session.add(alert)
    session.flush()
    return alert


def origin_of(session: Session, alert_id: int) -> FollowUp | None:
    """The follow-up link of an alert (its origin and rule), if it is a follow-up."""
    return session.get(FollowUp, alert_id)


def follow_ups(session: Session, origin_id: int) -> list[tuple[Alert, FollowUp]]:
    """The follow-ups written to an alert's recipients, oldest first."""
    query = (
        select(Alert, FollowUp)
        .join(FollowUp, FollowUp.alert_id == Alert.id)
        .where(FollowUp.origin_id == origin_id)
        .order_by(Alert.id)
    )
    return [(alert, link) for alert, link in session.execute(query)]
