"""Tags editors put on subscribers, one by one or in bulk through a filter."""

from __future__ import annotations

import re

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.audience.directory import SubscriberFilter, matching_ids
from clarion.errors import NotFound, ValidationError
from clarion.i18n import admin_gettext
from clarion.models import Editor, SubscriberTag, Tag

TAG_RE = re.compile(r"[\w][\w .-]{0,63}")


def clean_name(raw: str) -> str:
    """A tag name with spaces tidied; ValidationError when it cannot be one."""
    name = " ".join(raw.split())
    if not TAG_RE.fullmatch(name):
        raise ValidationError(
            {
                "name": admin_gettext(
                    "Use up to 64 letters, digits, spaces, dots, dashes or underscores."
                )
            }
        )
    return name


def all_tags(session: Session) -> list[Tag]:
    """Every tag, by name."""
    return list(session.scalars(select(Tag).order_by(Tag.name)))


def tag_counts(session: Session) -> dict[int, int]:
    """tag id -> number of subscribers carrying it."""
    rows = session.execute(
        select(SubscriberTag.tag_id, func.count()).group_by(SubscriberTag.tag_id)
    )
    return dict(rows.all())


def get_tag(session: Session, tag_id: int) -> Tag:
    """The tag with this id, or NotFound."""
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise NotFound(admin_gettext("No such tag."))
    return tag


def find_or_create(session: Session, raw: str) -> Tag:
    """The tag with this name, made if new."""
    name = clean_name(raw)
    tag = session.scalar(select(Tag).where(func.lower(Tag.name) == name.lower()))
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.flush()
    return tag


def create_tag(session: Session, raw: str) -> Tag:
    """A new tag; refused when one of that name exists."""
    name = clean_name(raw)
    if session.scalar(select(Tag.id).where(func.lower(Tag.name) == name.lower())) is not None:
        raise ValidationError({"name": admin_gettext("A tag with this name exists already.")})
    return find_or_create(session, name)


def delete_tag(session: Session, actor: Editor, tag: Tag, ip: str | None) -> None:
    """Remove a tag from everyone and forget it."""
    audit.record(session, actor, "tag.delete", f"tag:{tag.id}", ip, name=tag.name)
    session.delete(tag)


def attach(session: Session, actor: Editor, tag: Tag, f: SubscriberFilter, ip: str | None) -> int:
    """Tag every subscriber matching the filter (one statement); returns how many were added."""
    ids = matching_ids(f).subquery()
    already = select(SubscriberTag.subscriber_id).where(SubscriberTag.tag_id == tag.id)
    added = len(
        session.execute(
            insert(SubscriberTag)
            .from_select(
                ["subscriber_id", "tag_id"],
                select(ids.c.id, literal(tag.id)).where(ids.c.id.not_in(already)),
            )
            .returning(SubscriberTag.subscriber_id)
        ).all()
    )
    audit.record(session, actor, "tag.attach", f"tag:{tag.id}", ip, filter=f.as_args(), n=added)
    return added


def detach(session: Session, actor: Editor, tag: Tag, f: SubscriberFilter, ip: str | None) -> int:
    """Take the tag off every subscriber matching the filter; returns how many lost it."""
    removed = session.execute(
        delete(SubscriberTag).where(
            SubscriberTag.tag_id == tag.id, SubscriberTag.subscriber_id.in_(matching_ids(f))
        )
    ).rowcount
    audit.record(session, actor, "tag.detach", f"tag:{tag.id}", ip, filter=f.as_args(), n=removed)
    return removed


def set_tags(
    session: Session, actor: Editor, subscriber_id: int, names: list[str], ip: str | None
) -> list[str]:
    """Give one subscriber exactly these tags (made when new); returns their names, sorted."""
    wanted = {find_or_create(session, raw).id: raw for raw in names}
    have = set(
        session.scalars(
            select(SubscriberTag.tag_id).where(SubscriberTag.subscriber_id == subscriber_id)
        )
    )
    for tag_id in set(wanted) - have:
        session.add(SubscriberTag(subscriber_id=subscriber_id, tag_id=tag_id))
    if have - set(wanted):
        session.execute(
            delete(SubscriberTag).where(
                SubscriberTag.subscriber_id == subscriber_id,
                SubscriberTag.tag_id.in_(have - set(wanted)),
            )
        )
    if set(wanted) != have:
        audit.record(
            session, actor, "subscriber.tags", f"subscriber:{subscriber_id}", ip,
            added=len(set(wanted) - have), removed=len(have - set(wanted)),
        )  # fmt: skip
    session.flush()
    return sorted(session.get(Tag, i).name for i in wanted)
