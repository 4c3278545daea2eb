"""Segments: who an audience reaches by what readers did, as ONE SQL condition on Subscriber.

A tree is JSON: {"all": [...]}, {"any": [...]}, {"not": {...}}, or a condition
{"type": ..., ...} (TYPES). parse() checks its shape and names the path of each fault
("conditions.all[1].petition"); check() finds what it refers to that no longer exists;
condition() turns it into EXISTS subqueries on indexed columns, so that counting and the
ledger's INSERT … SELECT run in the database and never load readers into Python. Saved
segments are named trees an audience reuses with {"type": "segment", "segment": id}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from clarion import audit
from clarion.alerts import kinds
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.editors import require
from clarion.errors import NotFound, ValidationError
from clarion.i18n import NA_, admin_gettext
from clarion.models import (
    Alert,
    AlertKind,
    AlertRole,
    AlertStatus,
    Click,
    Delivery,
    DeliveryStatus,
    Editor,
    MailingList,
    Petition,
    Segment,
    Signature,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Tag,
)

MAX_DEPTH = 8
MAX_NODES = 60
MAX_COUNT = 10_000

# Each condition's fields: name -> (kind of value, required).
TYPES: dict[str, dict[str, tuple[str, bool]]] = {
    "subscribed": {"list": ("id", True), "after": ("date", False), "before": ("date", False)},
    "language": {"languages": ("codes", True)},
    "tag": {"tags": ("ids", True)},
    "country": {"countries": ("countries", True), "petition": ("id", False)},
    "signed": {"petition": ("id", False)},
    "received": {"alert": ("id", True)},
    "clicked": {"alert": ("id", True), "link": ("index", False)},
    "shared": {"hashtag_day": ("id", True)},
    "inactive": {"alerts": ("count", False), "days": ("count", False)},
    "segment": {"segment": ("id", True)},
}
# What a field's id refers to, for check().
REFERS = {"list": MailingList, "tags": Tag, "petition": Petition, "alert": Alert,
          "hashtag_day": Alert, "segment": Segment}  # fmt: skip
# Alerts whose clicks a condition reads: dispatch writes the buffered clicks first.
USES_CLICKS = {"clicked", "shared", "inactive"}
# Alerts that went out to readers, newest first: the "last N alerts" of `inactive`.
SENT_STATES = (AlertStatus.SENDING, AlertStatus.PAUSED, AlertStatus.SENT)
# Alerts that have not started: they read a saved segment when they do (a send inlines it).
UNSENT = (AlertStatus.DRAFT, AlertStatus.SCHEDULED)

EXPECTED = {
    "id": NA_("Must be an id (a whole number above 0)."),
    "ids": NA_("Must be a non-empty list of ids (whole numbers above 0)."),
    "index": NA_("Must be a link number (a whole number from 0)."),
    "count": NA_("Must be a whole number from 1 to %(max)s."),
    "date": NA_("Must be a date as YYYY-MM-DD."),
    "codes": NA_('Must be a non-empty list of language codes, like ["en", "ru"].'),
    "countries": NA_('Must be a non-empty list of two-letter country codes, like ["BY"].'),
}
CODE_RE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


# --- parse: shape ------------------------------------------------------------------------


def parse(raw: Any, path: str = "conditions") -> dict[str, Any]:
    """The tree (parsed JSON, or its text) with its values cleaned; ValidationError maps the
    path of each fault to what to fix."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            where = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
            raise ValidationError(
                {
                    path: admin_gettext(
                        "Not valid JSON (line %(line)s, column %(column)s).",
                        line=where[0],
                        column=where[1],
                    )
                }
            ) from None
    errors: dict[str, str] = {}
    counter = [0]
    tree = _node(raw, path, 1, errors, counter)
    if counter[0] > MAX_NODES:
        errors[path] = admin_gettext(
            "Too many conditions (%(count)s); at most %(max)s.", count=counter[0], max=MAX_NODES
        )
    if errors:
        raise ValidationError(errors)
    return tree


def _node(raw: Any, path: str, depth: int, errors: dict[str, str], counter: list[int]) -> Any:
    counter[0] += 1
    if depth > MAX_DEPTH:
        errors[path] = admin_gettext("Nested too deep; at most %(max)s levels.", max=MAX_DEPTH)
        return None
    if not isinstance(raw, Mapping) or len(raw) == 0:
        errors[path] = admin_gettext(
            'Must be an object: {"all": [...]}, {"any": [...]}, {"not": {...}} or {"type": ...}.'
        )
        return None
    if "type" not in raw:
        return _group(raw, path, depth, errors, counter)
    return _leaf(raw, path, errors)


def _group(raw: Mapping, path: str, depth: int, errors: dict[str, str], counter: list[int]) -> Any:
    if len(raw) != 1 or next(iter(raw)) not in ("all", "any", "not"):
        errors[path] = admin_gettext(
            'Must be an object: {"all": [...]}, {"any": [...]}, {"not": {...}} or {"type": ...}.'
        )
        return None
    ((op, value),) = raw.items()
    if op == "not":
        return {"not": _node(value, f"{path}.not", depth + 1, errors, counter)}
    if not isinstance(value, list) or not value:
        errors[f"{path}.{op}"] = admin_gettext("Must be a non-empty list of conditions.")
        return None
    items = [_node(v, f"{path}.{op}[{n}]", depth + 1, errors, counter) for n, v in enumerate(value)]
    return {op: items}


def _leaf(raw: Mapping, path: str, errors: dict[str, str]) -> Any:
    kind = raw["type"]
    if kind not in TYPES:
        errors[f"{path}.type"] = admin_gettext(
            "Unknown condition %(type)s; the conditions are: %(types)s.",
            type=repr(kind),
            types=", ".join(TYPES),
        )
        return None
    spec = TYPES[kind]
    leaf: dict[str, Any] = {"type": kind}
    for name in set(raw) - set(spec) - {"type"}:
        errors[f"{path}.{name}"] = admin_gettext(
            "Unknown field; the fields are: %(fields)s.", fields=", ".join(["type", *spec])
        )
    for name, (value_kind, required) in spec.items():
        value = raw.get(name)
        if value is None:
            if required:
                errors[f"{path}.{name}"] = admin_gettext("Required.")
            continue
        cleaned = _value(value_kind, value)
        if cleaned is None:
            errors[f"{path}.{name}"] = admin_gettext(EXPECTED[value_kind], max=MAX_COUNT)
        else:
            leaf[name] = cleaned
    if kind == "inactive" and ("alerts" in raw) == ("days" in raw):
        errors[path] = admin_gettext('Give either "alerts" or "days", not both.')
    if kind == "subscribed" and leaf.get("after", "") > leaf.get("before", "9999"):
        errors[f"{path}.before"] = admin_gettext('Must be after the date given in "after".')
    return leaf


def _value(kind: str, value: Any) -> Any:
    """The value cleaned, or None when it is not of its kind."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if kind == "id":
        return value if whole and value > 0 else None
    if kind == "index":
        return value if whole and value >= 0 else None
    if kind == "count":
        return value if whole and 0 < value <= MAX_COUNT else None
    if kind == "date":
        try:
            return date.fromisoformat(value).isoformat() if isinstance(value, str) else None
        except ValueError:
            return None
    if not isinstance(value, list) or not value:
        return None
    if kind == "ids":
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        return sorted(set(value)) if ok else None
    pattern = CODE_RE if kind == "codes" else COUNTRY_RE
    ok = all(isinstance(v, str) and pattern.match(v) for v in value)
    return sorted(set(value)) if ok else None


# --- check: references ---------------------------------------------------------------------


def leaves(tree: Any, path: str = "conditions") -> Iterator[tuple[str, dict[str, Any]]]:
    """Each condition of a parsed tree with its path."""
    if not isinstance(tree, Mapping):
        return
    if "type" in tree:
        yield path, dict(tree)
        return
    for op, value in tree.items():
        if op == "not":
            yield from leaves(value, f"{path}.not")
        else:
            for n, item in enumerate(value):
                yield from leaves(item, f"{path}.{op}[{n}]")


def uses_clicks(tree: Any) -> bool:
    """Whether a condition of the tree reads clicks (also in the saved segments it names,
    once inlined)."""
    return any(leaf["type"] in USES_CLICKS for _path, leaf in leaves(tree))


def check(session: Session, tree: Any, *, saved: bool = False, path: str = "conditions") -> None:
    """ValidationError naming the path of each condition whose list, tag, petition, alert or
    segment no longer exists (a segment saved for reuse may not name another segment)."""
    errors: dict[str, str] = {}
    for where, leaf in leaves(tree, path):
        for name, model in REFERS.items():
            if name not in leaf:
                continue
            if saved and name == "segment":
                errors[f"{where}.segment"] = admin_gettext(
                    "A saved segment cannot include another saved segment."
                )
                continue
            ids = leaf[name] if isinstance(leaf[name], list) else [leaf[name]]
            found = set(session.scalars(select(model.id).where(model.id.in_(ids))))
            missing = [i for i in ids if i not in found]
            if missing:
                errors[f"{where}.{name}"] = admin_gettext(
                    "Nothing with id %(id)s: it may have been deleted.", id=missing[0]
                )
            elif name == "hashtag_day" and session.get(Alert, ids[0]).kind != AlertKind.HASHTAG_DAY:
                errors[f"{where}.{name}"] = admin_gettext(
                    "Alert %(id)s is not a hashtag day.", id=ids[0]
                )
    if errors:
        raise ValidationError(errors)


def inline(session: Session, tree: Any) -> Any:
    """The tree with each saved segment replaced by its conditions as they are now (what a
    send freezes, so that a later edit of the segment does not change who it reaches)."""
    if not isinstance(tree, Mapping):
        return tree
    if tree.get("type") == "segment":
        segment = session.get(Segment, tree["segment"])
        return dict(segment.conditions) if segment is not None else dict(tree)
    if "type" in tree:
        return dict(tree)
    return {op: inline(session, v) if op == "not" else [inline(session, i) for i in v]
            for op, v in tree.items()}  # fmt: skip


# --- condition: SQL ------------------------------------------------------------------------


# The subscriber ids (after, upto] of the ledger page dispatch is writing, while it builds it.
_PAGE: ContextVar[tuple[Any, Any] | None] = ContextVar("segments_page", default=None)


@contextmanager
def page_of(after: Any, upto: Any | None) -> Iterator[None]:
    """Within it, the conditions built (reader()) read only readers with ids in (after, upto]
    (ids, or bound parameters given when the statement runs); with upto None, all of them."""
    token = _PAGE.set(None if upto is None else (after, upto))
    try:
        yield
    finally:
        _PAGE.reset(token)


# Whether the leaf being built says "Subscriber.id IN (SELECT …)" rather than EXISTS
# (condition() sets it on SQLite; see _readers).
_SETS: ContextVar[bool] = ContextVar("segments_sets", default=False)


def page_range(column: Any) -> list[ColumnElement[bool]]:
    """Within page_of(), `column` (a subscriber_id) inside the page's id range; else nothing."""
    bounds = _PAGE.get()
    return [] if bounds is None else [column > bounds[0], column <= bounds[1]]


def _readers(column: Any, *where: ColumnElement[bool]) -> ColumnElement[bool]:
    """The readers whose id is `column` (a subscriber_id) in a row matching `where`.

    On SQLite (condition() sets _SETS) as `Subscriber.id IN (SELECT column …)`: SQLite lists
    the subquery once and can drive the query from it, where EXISTS is a probe per reader (a
    three-condition count at 100,000 readers: ~700 → ~150 ms). On PostgreSQL as EXISTS: in an
    AND both are the same semi-join (measured: no gain), and under an OR an IN becomes a
    hashed subplan, which turns into a rescan per reader once it outgrows work_mem."""
    if _SETS.get():
        return Subscriber.id.in_(select(column).where(*page_range(column), *where))
    return exists().where(reader(column), *where)


def reader(column: Any) -> ColumnElement[bool]:
    """`column` (a subscriber_id) is the reader's: `column == Subscriber.id`, and within
    page_of() also inside the page's id range. PostgreSQL carries an equality across a join,
    not a range, so without it each EXISTS of a page would read its whole table again."""
    bounds = _PAGE.get()
    if bounds is None:
        return column == Subscriber.id
    return and_(column == Subscriber.id, column > bounds[0], column <= bounds[1])


def condition(session: Session, tree: Any, negated: bool = False) -> ColumnElement[bool]:
    """The tree as one SQL condition on Subscriber (a parsed tree; see parse()).

    Negation is pushed down to the conditions (De Morgan), so that "did not" becomes NOT
    EXISTS, which PostgreSQL runs as an anti-join, rather than NOT around an OR of EXISTS,
    which it probes reader by reader. On SQLite a condition is an IN rather than an EXISTS
    (_readers)."""
    if "type" in tree:
        kind = tree["type"]
        sets = session.get_bind().dialect.name == "sqlite"
        if negated and kind not in NEGATED:
            sets = False  # NOT (id IN …) is no anti-join: NOT EXISTS is
        token = _SETS.set(sets)
        try:
            if not negated:
                return LEAVES[kind](session, tree)
            if kind in NEGATED:
                return NEGATED[kind](session, tree)
            return not_(LEAVES[kind](session, tree))
        finally:
            _SETS.reset(token)
    ((op, value),) = tree.items()
    if op == "not":
        return condition(session, value, not negated)
    parts = [condition(session, item, negated) for item in value]
    if (op == "all") != negated:
        return and_(true(), *parts)
    return or_(false(), *parts)


def _day(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)


def _subscribed(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    """Subscribed to the list now, having joined it on or after / before the dates given."""
    where = [
        Subscription.list_id == leaf["list"],
        Subscription.status == SubscriptionStatus.SUBSCRIBED,
    ]
    if "after" in leaf:
        where.append(Subscription.subscribed_at >= _day(leaf["after"]))
    if "before" in leaf:
        where.append(Subscription.subscribed_at < _day(leaf["before"]))
    return _readers(Subscription.subscriber_id, *where)


def _language(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return Subscriber.language.in_(leaf["languages"])


def _tag(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return _readers(SubscriberTag.subscriber_id, SubscriberTag.tag_id.in_(leaf["tags"]))


def _signatures(petition_id: int | None, *more: ColumnElement[bool]) -> list[Any]:
    """A confirmed signature (on the petition, if given) by the reader's id, and one by their
    address: two EXISTS, each on its own index, rather than one with an OR."""
    where = [Signature.confirmed_at.is_not(None), *more]
    if petition_id is not None:
        where.append(Signature.petition_id == petition_id)
    by_id = exists().where(*where, reader(Signature.subscriber_id))
    by_address = exists().where(*where, Signature.email == Subscriber.email)
    return [by_id, by_address]


def signed(petition_id: int | None, *more: ColumnElement[bool]) -> ColumnElement[bool]:
    """True for a subscriber with a confirmed signature (on the petition, if given), matched by
    subscriber id or by address."""
    return or_(*_signatures(petition_id, *more))


def unsigned(petition_id: int | None, *more: ColumnElement[bool]) -> ColumnElement[bool]:
    """The opposite of signed(), as two NOT EXISTS (two anti-joins)."""
    return and_(*(not_(found) for found in _signatures(petition_id, *more)))


def _signed(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return signed(leaf.get("petition"))


def _unsigned(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return unsigned(leaf.get("petition"))


def _country(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return signed(leaf.get("petition"), Signature.country.in_(leaf["countries"]))


def _no_country(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return unsigned(leaf.get("petition"), Signature.country.in_(leaf["countries"]))


def _received(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return _readers(
        Delivery.subscriber_id,
        Delivery.alert_id == leaf["alert"],
        Delivery.status == DeliveryStatus.SENT,
    )


def _clicks(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    # A link scanner opening every link did not click for the reader.
    return _readers(Click.subscriber_id, Click.suspected_scanner.is_(False), *where)


def _clicked(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    where = [Click.alert_id == leaf["alert"]]
    if "link" in leaf:
        where.append(Click.link_index == leaf["link"])
    return _clicks(*where)


def shared_from(mails: list[tuple[int, list[str]]]) -> ColumnElement[bool]:
    """True for a subscriber who clicked a share link of one of these (alert id, frozen links)
    mails; share links are recognised by where they point (kinds.is_share_link)."""
    base_url = get_settings().base_url
    shared = []
    for alert_id, links in mails:
        indexes = [n for n, url in enumerate(links) if kinds.is_share_link(url, base_url)]
        if indexes:
            shared.append(and_(Click.alert_id == alert_id, Click.link_index.in_(indexes)))
    return _clicks(or_(*shared)) if shared else false()


def day_mails(session: Session, day_id: int) -> list[tuple[int, list[str]]]:
    """A hashtag day's sent mails with their frozen links: the day itself, its announcements
    and reminders, and their follow-ups to those not reached."""
    family = [day_id, *session.scalars(select(Alert.id).where(Alert.parent_id == day_id))]
    query = select(Alert.id, Alert.frozen_links).where(
        Alert.frozen_at.is_not(None),
        or_(
            Alert.id.in_(family),
            and_(Alert.parent_id.in_(family), Alert.role == AlertRole.UNREACHED.value),
        ),
    )
    return [(alert_id, list(links or [])) for alert_id, links in session.execute(query)]


def _shared(session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return shared_from(day_mails(session, leaf["hashtag_day"]))


def _recent_alerts(count: int) -> Any:
    """The last `count` alerts sent to anyone (not welcome mails or series steps), newest
    first."""
    return (
        select(Alert.id, Alert.frozen_at)
        .where(
            Alert.status.in_(SENT_STATES),
            Alert.frozen_at.is_not(None),
            # Mails each reader gets at their own time are not "the last alerts sent".
            Alert.role.not_in([AlertRole.WELCOME.value, AlertRole.SERIES_STEP.value]),
        )
        .order_by(Alert.frozen_at.desc(), Alert.id.desc())
        .limit(count)
        .subquery()
    )


def _lately(leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    """A click (not a scanner's) on one of the last N alerts sent (to anyone), or in the last
    N days."""
    if "days" in leaf:
        when = Click.clicked_at >= utcnow() - timedelta(days=leaf["days"])
    else:
        recent = _recent_alerts(leaf["alerts"])
        when = Click.alert_id.in_(select(recent.c.id).scalar_subquery())
    return and_(Click.suspected_scanner.is_(False), when)


def _clicked_lately(leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return _readers(Click.subscriber_id, _lately(leaf))


def _settled(leaf: Mapping[str, Any], who: Any = Subscriber) -> ColumnElement[bool]:
    """Known to us before the window opened, so they had all of it to click: a reader who
    joined yesterday is new, not inactive (re-permission must never remove them)."""
    if "days" in leaf:
        return who.created_at < utcnow() - timedelta(days=leaf["days"])
    recent = _recent_alerts(leaf["alerts"])
    # No alert sent yet: nobody has had a chance to click, so nobody is settled.
    opened = select(func.coalesce(func.min(recent.c.frozen_at), utcnow())).scalar_subquery()
    return who.created_at < opened


def _active(session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    """Not inactive: clicked lately, or too new to tell. On SQLite (_readers) one IN of both
    sets, rather than an OR of a column and a probe of clicks per reader; on PostgreSQL an OR
    of the column and an IN that is one hash of the clickers, when it fits in memory."""
    if not _SETS.get():
        if _clickers_fit(session):
            clicked = select(Click.subscriber_id).where(
                *page_range(Click.subscriber_id), _lately(leaf)
            )
            return or_(not_(_settled(leaf)), Subscriber.id.in_(clicked))
        return or_(not_(_settled(leaf)), _clicked_lately(leaf))
    new = aliased(Subscriber)
    young = select(new.id).where(*page_range(new.id), not_(_settled(leaf, new)))
    clicked = select(Click.subscriber_id).where(*page_range(Click.subscriber_id), _lately(leaf))
    return Subscriber.id.in_(union_all(young, clicked))


# Bytes a click takes in PostgreSQL's hash of a subquery (a bigint, its header and bucket),
# generously: the estimate must not be short, or the IN is a scan of clicks per reader.
CLICK_HASH_BYTES = 64


def _clickers_fit(session: Session) -> bool:
    """Whether every click could be hashed within this transaction's work_mem (PostgreSQL).

    Under an OR, `EXISTS (clicks of the reader)` is a probe of clicks per reader (500,000
    probes, ~1.1 s of a 2.1 s count at 1,000,000 readers), while `id IN (clicks …)` is one
    hashed subplan (the count: ~0.95 s) — but only when the planner thinks it fits in
    memory; otherwise it rescans the clicks for every reader. So the IN only when all clicks,
    not just the window's, fit (db.set_based raises work_mem for the audience queries)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(
        session.scalar(
            text(
                # Before the first ANALYZE reltuples is -1: then a row a 32 bytes of the table
                # (a click takes more), which overestimates, as it should.
                "SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples"
                " ELSE pg_relation_size(c.oid) / 32.0 END"
                " * :per < pg_size_bytes(current_setting('work_mem'))"
                " * current_setting('hash_mem_multiplier')::float"
                " FROM pg_class c WHERE c.oid = 'clicks'::regclass"
            ),
            {"per": CLICK_HASH_BYTES},
        )
    )


def _inactive(_session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    """Known before the window opened and clicked nothing in it: no click in the last N
    alerts sent (to anyone) or in the last N days."""
    clicked = exists().where(reader(Click.subscriber_id), _lately(leaf))  # NOT EXISTS, not NOT IN
    return and_(_settled(leaf), not_(clicked))


def _segment(session: Session, leaf: Mapping[str, Any], negated: bool = False) -> Any:
    segment = session.get(Segment, leaf["segment"])
    if segment is None:  # check() refuses it before a send; a count finds nobody either way
        return false()
    return condition(session, segment.conditions, negated)


def _not_segment(session: Session, leaf: Mapping[str, Any]) -> ColumnElement[bool]:
    return _segment(session, leaf, negated=True)


LEAVES = {
    "subscribed": _subscribed,
    "language": _language,
    "tag": _tag,
    "country": _country,
    "signed": _signed,
    "received": _received,
    "clicked": _clicked,
    "shared": _shared,
    "inactive": _inactive,
    "segment": _segment,
}
# Conditions whose opposite is better said otherwise than NOT (…).
NEGATED = {
    "signed": _unsigned,
    "country": _no_country,
    "inactive": _active,
    "segment": _not_segment,
}


# --- saved segments --------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned or len(cleaned) > 200:
        raise ValidationError(
            {"name": admin_gettext("Give the segment a name (at most 200 characters).")}
        )
    return cleaned


def _taken(session: Session, name: str, own_id: int | None = None) -> None:
    other = session.scalar(select(Segment.id).where(Segment.name == name))
    if other is not None and other != own_id:
        raise ValidationError(
            {"name": admin_gettext("Another segment is called %(name)s.", name=name)}
        )


def _checked(
    session: Session, name: str, raw: Any, own_id: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The cleaned name and checked tree; ValidationError names every fault of both at once."""
    errors: dict[str, str] = {}
    cleaned, tree = "", {}
    try:
        cleaned = _clean_name(name)
        _taken(session, cleaned, own_id)
    except ValidationError as exc:
        errors.update(exc.errors)
    try:
        tree = parse(raw)
        check(session, tree, saved=True)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return cleaned, tree


def create(session: Session, editor: Editor | None, name: str, raw: Any) -> Segment:
    """A saved segment: a name and a checked condition tree (no other saved segment in it)."""
    if editor is not None:
        require(editor, "compose")
    name, tree = _checked(session, name, raw)
    segment = Segment(name=name, conditions=tree, created_by_id=editor.id if editor else None)
    session.add(segment)
    session.flush()
    audit.record(session, editor, "segment.create", f"segment:{segment.id}", name=name)
    return segment


def update(
    session: Session, editor: Editor | None, segment_id: int, name: str, raw: Any
) -> Segment:
    """Rename the segment and replace its conditions; alerts that use it see the change until
    they start (a send freezes the conditions it had then)."""
    if editor is not None:
        require(editor, "compose")
    segment = get(session, segment_id)
    name, tree = _checked(session, name, raw, segment.id)
    segment.name, segment.conditions = name, tree
    audit.record(session, editor, "segment.update", f"segment:{segment.id}", name=name)
    return segment


def delete(session: Session, editor: Editor | None, segment_id: int) -> None:
    """Delete the segment; refused while an unsent alert uses it (the error names them)."""
    if editor is not None:
        require(editor, "compose")
    segment = get(session, segment_id)
    users = used_by(session, segment.id)
    if users:
        named = ", ".join(f"“{alert.name or alert.subject}” (#{alert.id})" for alert in users)
        raise ValidationError(
            {
                "segment": admin_gettext(
                    "Unsent alerts use this segment: %(alerts)s. Change their audience first.",
                    alerts=named,
                )
            }
        )
    audit.record(session, editor, "segment.delete", f"segment:{segment.id}", name=segment.name)
    session.delete(segment)


def get(session: Session, segment_id: int) -> Segment:
    """The saved segment, or NotFound."""
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(admin_gettext("There is no such segment."))
    return segment


def all_segments(session: Session) -> list[Segment]:
    """Every saved segment by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def used_by(session: Session, segment_id: int) -> list[Alert]:
    """The unsent alerts whose conditions name the saved segment, oldest first (alerts that
    started carry its conditions inlined and no longer depend on it)."""
    return uses(session).get(segment_id, [])


def uses(session: Session) -> dict[int, list[Alert]]:
    """Each saved segment's id with the unsent alerts that name it, oldest first."""
    found: dict[int, list[Alert]] = {}
    query = select(Alert).where(Alert.status.in_(UNSENT)).order_by(Alert.id)
    for alert in session.scalars(query):
        named = {
            leaf.get("segment")
            for _path, leaf in leaves((alert.audience or {}).get("conditions"))
            if leaf["type"] == "segment"
        }
        for segment_id in named:
            found.setdefault(segment_id, []).append(alert)
    return found


def alert_choices(session: Session, limit: int = 300) -> list[tuple[int, str, bool]]:
    """The newest alerts that started (those a condition can say something about), as (id,
    name, is a hashtag day): the editor's choices."""
    query = (
        select(Alert.id, Alert.name, Alert.subject, Alert.kind)
        .where(Alert.frozen_at.is_not(None), Alert.role != AlertRole.WELCOME.value)
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    return [
        (alert_id, name or subject, kind == AlertKind.HASHTAG_DAY)
        for alert_id, name, subject, kind in session.execute(query)
    ]
