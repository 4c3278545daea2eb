"""Petitions: what editors write and change, whether one is open, its count and its goal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.alerts import markup, media, petition_pick
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.errors import NotFound, ValidationError
from clarion.i18n import admin_gettext, format_number
from clarion.i18n import gettext as _
from clarion.models import Editor, Petition, Signature
from clarion.redisconn import get_redis

SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_GOAL = 100_000_000
COUNT_TTL_SECONDS = 5
TEXT_FIELDS = {
    "title": 300,
    "slug": 100,
    "target": 300,
    "body_md": 50_000,
    "image_alt": 300,
}


@dataclass(frozen=True)
class PetitionValues:
    """A petition form's fields, checked and converted."""

    title: str
    slug: str
    body_md: str
    target: str
    goal: int
    raise_goal: bool
    deadline: datetime | None
    require_confirmation: bool
    is_open: bool
    image_alt: str = ""


def _flag(raw: Mapping[str, object], name: str) -> bool:
    # A checkbox ("on") or a boolean.
    return str(raw.get(name, "")).lower() in {"1", "on", "true", "yes"}


def _deadline(raw: str, zone: str, errors: dict[str, str]) -> datetime | None:
    if not raw:
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        errors["deadline"] = admin_gettext("Write the deadline as YYYY-MM-DD HH:MM.")
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


def _goal(raw: str, errors: dict[str, str]) -> int:
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_GOAL:
        errors["goal"] = admin_gettext(
            "Enter a whole number of signatures, 0 to %(most)s.", most=format_number(MAX_GOAL)
        )
        return 0
    return int(raw)


def validate(
    session: Session, raw: Mapping[str, object], zone: str, petition_id: int | None = None
) -> PetitionValues:
    """Check a petition form; ValidationError names every field to fix."""
    errors: dict[str, str] = {}
    text = {name: str(raw.get(name) or "").strip() for name in TEXT_FIELDS}
    for name, limit in TEXT_FIELDS.items():
        if len(text[name]) > limit:
            errors[name] = admin_gettext(
                "Keep this under %(limit)s characters (now %(now)s).",
                limit=limit,
                now=len(text[name]),
            )
    if not text["title"]:
        errors["title"] = admin_gettext("Give the petition a title.")
    slug = text["slug"].lower()
    if not SLUG_RE.fullmatch(slug):
        errors.setdefault(
            "slug", "Use lower-case letters, digits and single hyphens, like free-them-all."
        )
    elif _slug_taken(session, slug, petition_id):
        errors["slug"] = admin_gettext("Another petition already has this address; choose another.")
    goal = _goal(str(raw.get("goal") or "").strip(), errors)
    deadline = _deadline(str(raw.get("deadline") or "").strip(), zone, errors)
    if errors:
        raise ValidationError(errors)
    return PetitionValues(
        title=text["title"],
        slug=slug,
        body_md=text["body_md"],
        target=text["target"],
        goal=goal,
        raise_goal=_flag(raw, "raise_goal"),
        deadline=deadline,
        require_confirmation=_flag(raw, "require_confirmation"),
        is_open=_flag(raw, "is_open"),
        image_alt=text["image_alt"],
    )


def _slug_taken(session: Session, slug: str, petition_id: int | None) -> bool:
    query = select(Petition.id).where(Petition.slug == slug)
    if petition_id is not None:
        query = query.where(Petition.id != petition_id)
    return session.scalar(query) is not None


def _apply(petition: Petition, values: PetitionValues) -> None:
    for name, value in values.__dict__.items():
        setattr(petition, name, value)


def _with_copied_images(values: PetitionValues) -> PetitionValues:
    """Images from elsewhere in the text copied once to our media (no page or mail loads them
    from another server); ValidationError(body_md) names one that cannot be."""
    settings = get_settings()
    body = media.copy_markdown_images(
        values.body_md, "body_md", settings.instance_dir, settings.base_url
    )
    return replace(values, body_md=body)


def create(
    session: Session, editor: Editor, values: PetitionValues, ip: str | None = None
) -> Petition:
    """A new petition, its text's images copied to our media; recorded in the audit log."""
    values = _with_copied_images(values)
    petition = Petition(created_by_id=editor.id)
    _apply(petition, values)
    session.add(petition)
    session.flush()
    audit.record(
        session, editor, "petition.create", f"petition:{petition.id}", ip, slug=values.slug
    )
    return petition


def update(
    session: Session,
    editor: Editor,
    petition: Petition,
    values: PetitionValues,
    ip: str | None = None,
) -> None:
    """Change a petition (its text's images copied); the audit log keeps which fields changed."""
    values = _with_copied_images(values)
    changed = sorted(k for k, v in values.__dict__.items() if getattr(petition, k) != v)
    _apply(petition, values)
    session.flush()
    forget_count(petition.id)
    audit.record(session, editor, "petition.update", f"petition:{petition.id}", ip, changed=changed)


def delete(session: Session, editor: Editor, petition: Petition, ip: str | None = None) -> None:
    """Delete a petition and its signatures; the audit log keeps how many there were."""
    signatures = session.scalar(
        select(func.count()).select_from(Signature).where(Signature.petition_id == petition.id)
    )
    audit.record(
        session,
        editor,
        "petition.delete",
        f"petition:{petition.id}",
        ip,
        slug=petition.slug,
        signatures=signatures or 0,
    )
    session.delete(petition)
    session.flush()


def by_slug(session: Session, slug: str) -> Petition:
    """The petition at /p/<slug>, or NotFound."""
    petition = session.scalar(select(Petition).where(Petition.slug == slug))
    if petition is None:
        raise NotFound(_("There is no petition at this address."))
    return petition


def get(session: Session, petition_id: int) -> Petition:
    """A petition by id, or NotFound."""
    petition = session.get(Petition, petition_id)
    if petition is None:
        raise NotFound(admin_gettext("This petition does not exist."))
    return petition


def all_petitions(session: Session) -> list[Petition]:
    """Every petition, newest first."""
    return list(session.scalars(select(Petition).order_by(Petition.created_at.desc())))


def open_petitions(session: Session, now: datetime | None = None) -> list[Petition]:
    """Petitions that take signatures now, newest first, for the landing page."""
    now = now or utcnow()
    query = (
        select(Petition)
        .where(Petition.is_open, or_(Petition.deadline.is_(None), Petition.deadline > now))
        .order_by(Petition.created_at.desc())
    )
    return list(session.scalars(query))


def is_accepting(petition: Petition, now: datetime | None = None) -> bool:
    """True while the petition takes signatures: open, and its deadline not yet reached."""
    now = now or utcnow()
    return petition.is_open and (petition.deadline is None or now < petition.deadline)


def body_html(petition: Petition, base_url: str) -> str:
    """The petition text as sanitised HTML."""
    return markup.markdown_to_html(petition.body_md, base_url)


def _count_key(petition_id: int) -> str:
    return f"clarion:petition-count:{petition_id}"


def count_signatures(session: Session, petition_id: int) -> int:
    """Confirmed signatures, read from the database (unconfirmed ones do not count)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Signature)
            .where(Signature.petition_id == petition_id, Signature.confirmed_at.is_not(None))
        )
        or 0
    )


def count_unconfirmed(session: Session, petition_id: int) -> int:
    """Signatures still waiting for their address to be confirmed (not counted)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Signature)
            .where(Signature.petition_id == petition_id, Signature.confirmed_at.is_(None))
        )
        or 0
    )


def signature_count(session: Session, petition_id: int) -> int:
    """The count for pages and the embeddable counter, cached a few seconds in Redis."""
    client = get_redis()
    cached = client.get(_count_key(petition_id))
    if cached is not None:
        return int(cached)
    count = count_signatures(session, petition_id)
    client.set(_count_key(petition_id), count, ex=COUNT_TTL_SECONDS)
    return count


def forget_count(petition_id: int) -> None:
    """Drop the cached count (after a signature or a confirmation)."""
    get_redis().delete(_count_key(petition_id))


def displayed_goal(goal: int, count: int, raise_goal: bool) -> int:
    """The goal shown: the editor's, or once reached (when enabled) the next milestone.

    Milestones are 1, 2.5 and 5 times a power of ten (100, 250, 500, 1,000, 2,500 …): the
    next one above the count, so that the bar always has somewhere to go.
    """
    if goal <= 0 or not raise_goal or count < goal:
        return goal
    step = 1
    while True:
        for factor in (10, 25, 50):
            milestone = factor * step // 10
            if milestone > count and milestone > goal:
                return milestone
        step *= 10


@dataclass(frozen=True)
class Progress:
    """The counter and the progress bar of a petition."""

    count: int
    goal: int
    percent: int
    accepting: bool


def progress(session: Session, petition: Petition) -> Progress:
    """Count, goal as shown, how full the bar is, and whether signing is still possible."""
    count = signature_count(session, petition.id)
    goal = displayed_goal(petition.goal, count, petition.raise_goal)
    percent = min(100, count * 100 // goal) if goal else 0
    return Progress(count, goal, percent, is_accepting(petition))


def mail_progress(session: Session, petition_id: int) -> tuple[int, int]:
    """Confirmed signatures counted now (not the page's cached count) and the goal shown: what
    a petition alert's bar says when it is frozen."""
    petition = session.get(Petition, petition_id)
    count = count_signatures(session, petition_id)
    goal = displayed_goal(petition.goal, count, petition.raise_goal) if petition else 0
    return count, goal


# The alerts' freeze asks for a picked petition's progress through this port (alerts sit below).
petition_pick.set_progress(mail_progress)
