"""Mailing lists as editors manage them: name, slug, visibility, and the sender identity."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clarion.errors import NotFound, ValidationError
from clarion.models import MailingList, Subscription
from clarion.subscribers import normalise_email

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def all_lists(session: Session) -> list[MailingList]:
    """Every list, by name."""
    return list(session.scalars(select(MailingList).order_by(MailingList.name)))


def get_list(session: Session, list_id: int) -> MailingList:
    """The list with this id, or NotFound."""
    found = session.get(MailingList, list_id)
    if found is None:
        raise NotFound("No such list.")
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
        errors["name"] = "Give the list a name readers will recognise."
    elif len(name) > 200:
        errors["name"] = "Keep the name under 200 characters."
    if not SLUG_RE.fullmatch(slug):
        errors["slug"] = "Use lower-case letters, digits and dashes, like urgent-actions."
    else:
        taken = session.scalar(select(MailingList.id).where(MailingList.slug == slug))
        if taken is not None and (current is None or taken != current.id):
            errors["slug"] = "Another list already has this slug."
    from_name = str(raw.get("from_name", "")).strip()
    if len(from_name) > 200 or any(c in from_name for c in '\r\n<>"'):
        errors["from_name"] = "A plain name, without quotes or angle brackets."
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
