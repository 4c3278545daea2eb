"""A condition tree (clarion.alerts.segments) said in words, for the editor's lists and pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clarion.alerts.segments import REFERS, leaves
from clarion.i18n import admin_gettext
from clarion.models import Alert, MailingList, Petition, Segment, Tag

# The column that names each kind of thing a condition refers to.
TITLES = {MailingList: MailingList.name, Tag: Tag.name, Petition: Petition.title,
          Segment: Segment.name}  # fmt: skip


def describe(session: Session, tree: Any) -> str:
    """The tree in words, each list, tag, petition, alert and segment by its name (one query
    per kind of thing); a missing one as its id, marked missing."""
    return _node(tree, _names(session, tree), top=True) if tree else ""


def _names(session: Session, tree: Any) -> dict[type, dict[int, str]]:
    wanted: dict[type, set[int]] = {}
    for _path, leaf in leaves(tree):
        for field, model in REFERS.items():
            value = leaf.get(field)
            ids = value if isinstance(value, list) else [value] if value is not None else []
            wanted.setdefault(model, set()).update(ids)
    names: dict[type, dict[int, str]] = {}
    for model, ids in wanted.items():
        # An alert without a name is known by its subject.
        title = func.coalesce(func.nullif(Alert.name, ""), Alert.subject) if model is Alert else (
            TITLES[model]
        )
        query = select(model.id, title).where(model.id.in_(ids))
        names[model] = {ident: name for ident, name in session.execute(query)}
    return names


def _node(tree: Any, names: dict[type, dict[int, str]], top: bool = False) -> str:
    if not isinstance(tree, Mapping):
        return "?"
    if "type" in tree:
        return _leaf(tree, names)
    ((op, value),) = tree.items()
    if op == "not":
        return admin_gettext("not (%(condition)s)", condition=_node(value, names))
    joiner = admin_gettext(" and ") if op == "all" else admin_gettext(" or ")
    said = joiner.join(_node(item, names) for item in value)
    return said if top or len(value) == 1 else f"({said})"


def _name(names: dict[type, dict[int, str]], model: type, ident: int) -> str:
    found = names.get(model, {}).get(ident)
    if found is None:
        return admin_gettext("#%(id)s (missing)", id=ident)
    return f"“{found}”"


def _leaf(leaf: Mapping[str, Any], names: dict[type, dict[int, str]]) -> str:
    kind = leaf["type"]
    name = lambda field: _name(names, REFERS[field], leaf[field])  # noqa: E731
    petition = name("petition") if "petition" in leaf else admin_gettext("any petition")
    if kind == "subscribed":
        said = admin_gettext("subscribed to %(list)s", list=name("list"))
        if "after" in leaf:
            said += " " + admin_gettext("since %(date)s", date=leaf["after"])
        if "before" in leaf:
            said += " " + admin_gettext("before %(date)s", date=leaf["before"])
        return said
    if kind == "language":
        return admin_gettext("reads in %(languages)s", languages=", ".join(leaf["languages"]))
    if kind == "tag":
        tags = ", ".join(_name(names, Tag, i) for i in leaf["tags"])
        return admin_gettext("tagged %(tags)s", tags=tags)
    if kind == "country":
        countries = ", ".join(leaf["countries"])
        return admin_gettext(
            "signed %(petition)s from %(countries)s", petition=petition, countries=countries
        )
    if kind == "signed":
        return admin_gettext("signed %(petition)s", petition=petition)
    if kind == "received":
        return admin_gettext("received %(alert)s", alert=name("alert"))
    if kind == "clicked":
        if "link" in leaf:
            return admin_gettext(
                "clicked link %(link)s of %(alert)s", link=leaf["link"], alert=name("alert")
            )
        return admin_gettext("clicked a link of %(alert)s", alert=name("alert"))
    if kind == "shared":
        return admin_gettext("shared the hashtag day %(day)s", day=name("hashtag_day"))
    if kind == "inactive" and "days" in leaf:
        return admin_gettext("clicked nothing in the last %(n)s days", n=leaf["days"])
    if kind == "inactive":
        return admin_gettext("clicked nothing in the last %(n)s alerts", n=leaf["alerts"])
    return admin_gettext("meets the segment %(segment)s", segment=name("segment"))
