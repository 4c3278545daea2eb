"""Mailing lists as editors manage them: name, slug, visibility, sender identity, welcome mail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.addresses import normalise_email
from clarion.alerts import kinds
from clarion.db import utcnow
from clarion.delivery import sending
from clarion.editors import require
from clarion.errors import NotFound, ValidationError
from clarion.i18n import admin_gettext
from clarion.inputs import has_control_chars
from clarion.models import Alert, AlertRole, AlertStatus, Editor, MailingList, Subscription
from clarion.series import welcome as series_welcome

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def all_lists(session: Session) -> list[MailingList]:
    """Every list, by name."""
    return list(session.scalars(select(MailingList).order_by(MailingList.name)))


def get_list(session: Session, list_id: int) -> MailingList:
    """The list with this id, or NotFound."""
    found = session.get(MailingList, list_id)
    if found is None:
        raise NotFound(admin_gettext("No such list."))
    return found


def by_slug(session: Session, slug: str) -> MailingList:
    """The list with this slug; NotFound names the slugs that exist."""
    found = session.scalar(select(MailingList).where(MailingList.slug == slug))
    if found is None:
        known = ", ".join(ml.slug for ml in all_lists(session)) or "none yet"
        raise NotFound(f"No list with the slug {slug!r} (lists: {known}).")
    return found


def counts(session: Session) -> dict[int, dict[str, int]]:
    """list id -> status -> number of subscriptions."""
    result: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(Subscription.list_id, Subscription.status, func.count()).group_by(
            Subscription.list_id, Subscription.status
        )
    )
    for list_id, status, n in rows:
        result.setdefault(list_id, {})[str(getattr(status, "value", status))] = n
    return result


def _optional_address(raw: str, name: str, errors: dict[str, str]) -> str | None:
    if not raw.strip():
        return None
    try:
        return normalise_email(raw, name)
    except ValidationError as exc:
        errors.update(exc.errors)
        return None


def _clean(session: Session, raw: Mapping[str, Any], current: MailingList | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = str(raw.get("name", "")).strip()
    slug = str(raw.get("slug", "")).strip().lower()
    if not name:
        errors["name"] = admin_gettext("Give the list a name readers will recognise.")
    elif len(name) > 200:
        errors["name"] = admin_gettext("Keep the name under 200 characters.")
    elif has_control_chars(name):  # it goes into the List-Id header of every mail
        errors["name"] = admin_gettext(
            "Write the name on one line, without tabs or control characters."
        )
    if not SLUG_RE.fullmatch(slug):
        errors["slug"] = admin_gettext(
            "Use lower-case letters, digits and dashes, like urgent-actions."
        )
    else:
        taken = session.scalar(select(MailingList.id).where(MailingList.slug == slug))
        if taken is not None and (current is None or taken != current.id):
            errors["slug"] = admin_gettext("Another list already has this slug.")
    from_name = str(raw.get("from_name", "")).strip()
    if len(from_name) > 200 or has_control_chars(from_name) or any(c in from_name for c in '<>"'):
        errors["from_name"] = (
            "A plain name on one line, without quotes, angle brackets or control characters."
        )
    values = {
        "name": name,
        "slug": slug,
        "description": str(raw.get("description", "")).strip()[:2000],
        "is_public": bool(raw.get("is_public")),
        "from_name": from_name or None,
        "from_email": _optional_address(str(raw.get("from_email", "")), "from_email", errors),
        "reply_to": _optional_address(str(raw.get("reply_to", "")), "reply_to", errors),
    }
    if errors:
        raise ValidationError(errors)
    return values


def create_list(session: Session, raw: Mapping[str, Any]) -> MailingList:
    """A new list from form values; ValidationError names each bad field."""
    made = MailingList(**_clean(session, raw, None))
    session.add(made)
    session.flush()
    return made


def update_list(session: Session, mailing_list: MailingList, raw: Mapping[str, Any]) -> None:
    """Change a list's name, slug, visibility or sender."""
    for key, value in _clean(session, raw, mailing_list).items():
        setattr(mailing_list, key, value)


# --- Welcome mail ----------------------------------------------------------------------


def welcome_alert_id(session: Session, mailing_list: MailingList) -> int | None:
    """The alert of the list's welcome mail (the first step of its welcome series), or None."""
    return series_welcome.alert_id_of(session, mailing_list.id)


def welcome_choices(session: Session, mailing_list: MailingList) -> list[Alert]:
    """Alerts that can be this list's welcome mail: its current one, and every plain draft."""
    current = welcome_alert_id(session, mailing_list)
    query = select(Alert).where(
        (Alert.id == current)
        | ((Alert.status == AlertStatus.DRAFT) & (Alert.role == AlertRole.NONE.value))
    )
    return list(session.scalars(query.order_by(Alert.id.desc())))


def _check_welcome(alert: Alert | None) -> Alert:
    if alert is None:
        raise ValidationError({"welcome_alert_id": admin_gettext("This alert no longer exists.")})
    if alert.status != AlertStatus.DRAFT or alert.role != AlertRole.NONE:
        raise ValidationError(
            {
                "welcome_alert_id": admin_gettext(
                    "Choose a draft: it is frozen as it is when you save."
                )
            }
        )
    problems = []
    if not alert.subject.strip():
        problems.append(admin_gettext("it has no subject"))
    try:
        kinds.validate_fields(alert.kind, alert.fields or {})
    except ValidationError as exc:
        problems += list(exc.errors.values())
    if problems:
        raise ValidationError(
            {
                "welcome_alert_id": admin_gettext(
                    "This draft cannot be sent yet: %(problems)s", problems="; ".join(problems)
                )
            }
        )
    return alert


def set_welcome(
    session: Session,
    editor: Editor,
    mailing_list: MailingList,
    alert_id: int | None,
    ip: str | None = None,
) -> None:
    """Choose the alert each reader gets on confirming a subscription to this list (or none).

    The chosen draft is frozen now and becomes the one step of the list's welcome series
    (clarion.series.welcome), which sends it on confirmation through the delivery engine, one
    ledger row per reader. A welcome it replaces finishes once its queued mails are out.
    """
    if alert_id == welcome_alert_id(session, mailing_list):
        return
    require(editor, "send")
    if alert_id is not None:
        alert = _check_welcome(session.get(Alert, alert_id))
        audience = {"lists": [mailing_list.id], "tags": [], "languages": []}
        alert.audience = audience
        alert.sender_list_id = mailing_list.id
        alert.role = AlertRole.WELCOME.value
        sending.freeze_alert(session, alert, audience)
        now = utcnow()
        sending.transition(session, alert, "start", started_at=now, dispatched_at=now)
    series_welcome.replace(session, editor, mailing_list, alert_id)
    audit.record(session, editor, "list.welcome", f"list:{mailing_list.id}", ip, alert=alert_id)
