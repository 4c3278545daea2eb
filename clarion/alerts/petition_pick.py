"""A petition alert's petition: the picker's choices, the fields it fills, and its progress.

The petition's count and goal belong to actions, which sits above alerts: actions registers how
they are read (`set_progress`, the port), and the freeze and the preview ask through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.alerts import kinds
from clarion.errors import ValidationError
from clarion.i18n import admin_gettext
from clarion.models import AlertKind, Petition

# (session, petition id) -> (confirmed signatures, the goal as the petition page shows it)
ProgressSource = Callable[[Session, int], tuple[int, int]]
# Filled from the petition when the editor left them empty (wording may be adapted by hand).
FILLED_IF_EMPTY = (("petition_title", "title"), ("target", "target"), ("image_alt", "image_alt"))

_progress: ProgressSource | None = None


def set_progress(source: ProgressSource | None) -> ProgressSource | None:
    """Register how a petition's count and goal are read; returns the source it replaces."""
    global _progress
    previous, _progress = _progress, source
    return previous


def choices(session: Session) -> list[tuple[int, str]]:
    """Every petition as (id, title), newest first: the picker's options."""
    rows = session.execute(select(Petition.id, Petition.title).order_by(Petition.id.desc()))
    return [(pid, title) for pid, title in rows]


def picked_id(fields: Mapping[str, Any]) -> int | None:
    """The id of the petition the fields pick, if any."""
    value = str(fields.get("petition_id") or "").strip()
    return int(value) if value.isdigit() else None


def picked(session: Session, fields: Mapping[str, Any]) -> Petition | None:
    """The picked petition; ValidationError naming the field when it no longer exists."""
    petition_id = picked_id(fields)
    if petition_id is None:
        return None
    petition = session.get(Petition, petition_id)
    if petition is None:
        raise ValidationError(
            {"petition_id": admin_gettext("The chosen petition no longer exists; pick another.")}
        )
    return petition


def fill(session: Session, fields: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """The fields with the picked petition's address and image, and its title, target and
    image description where the editor left them empty; unchanged without a pick."""
    filled = dict(fields)
    petition = picked(session, fields)
    if petition is None:
        return filled
    filled["petition_id"] = str(petition.id)
    filled["petition_url"] = f"{base_url.rstrip('/')}/p/{petition.slug}"
    filled["image_url"] = petition.image_url or ""
    for field, attribute in FILLED_IF_EMPTY:
        if not str(filled.get(field) or "").strip():
            filled[field] = getattr(petition, attribute) or ""
    return filled


def with_progress(
    session: Session, kind: AlertKind | str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields plus the picked petition's count and goal right now (for the freeze and the
    preview); unchanged for other kinds, alerts written by hand, or with no source registered."""
    result = dict(fields)
    petition_id = picked_id(fields) if AlertKind(kind) == AlertKind.PETITION else None
    if petition_id is None or _progress is None:
        return result
    count, goal = _progress(session, petition_id)
    result.update(zip(kinds.PROGRESS_FIELDS, (str(count), str(goal)), strict=True))
    return result
