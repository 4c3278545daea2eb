"""Keyset paging: pages found through an index by the last key seen, never by OFFSET."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam
from sqlalchemy.orm import Session

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass
class Page(Generic[T]):
    """Items newest first, with the keys that lead to the older and the newer page."""

    items: list[T]
    after: int | None = None  # ?after= this key shows the next, older page
    before: int | None = None  # ?before= this key shows the previous, newer page


def keyset_page(
    session: Session,
    query: Select[Any],
    key: ColumnElement[int] | tuple[ColumnElement[int], ...],
    key_of: Callable[[Any], int],
    *,
    after: int | None = None,
    before: int | None = None,
    size: int = PAGE_SIZE,
    scalars: bool = True,
    reuse: Hashable | None = None,
) -> Page[Any]:
    """One page of `query` ordered by `key` descending, found by seeking to the given key.

    `key` may be several columns that a join makes equal (subscriptions.subscriber_id and
    subscribers.id): the bound is put on each, since the planner does not carry an inequality
    across a join, and would otherwise walk one side's index from its very end.
    `reuse`: a name under which the caller always passes the same query and key: the page's
    statement is then built once per process (with its bound as a parameter), not per call.
    """
    keys = key if isinstance(key, tuple) else (key,)
    if before is not None:
        bounded = _statement(query, keys, "before", size, reuse)
        rows = _fetch(session, bounded, {"bound": before}, scalars)
        more_newer = len(rows) > size
        items = list(reversed(rows[:size]))
        return Page(
            items,
            after=key_of(items[-1]) if items else None,
            before=key_of(items[0]) if items and more_newer else None,
        )
    bounded = _statement(query, keys, "after" if after is not None else "first", size, reuse)
    rows = _fetch(session, bounded, {} if after is None else {"bound": after}, scalars)
    items = rows[:size]
    return Page(
        items,
        after=key_of(items[-1]) if len(rows) > size else None,
        before=key_of(items[0]) if items and after is not None else None,
    )


_REUSED: dict[tuple[Hashable, str, int], Select[Any]] = {}


def _statement(
    query: Select[Any],
    keys: tuple[ColumnElement[int], ...],
    side: str,
    size: int,
    reuse: Hashable | None,
) -> Select[Any]:
    """The page's statement: newer than the parameter `bound` (ascending), older (descending),
    or the newest; built once under `reuse`."""
    found = _REUSED.get((reuse, side, size)) if reuse is not None else None
    if found is not None:
        return found
    bound = bindparam("bound")
    if side == "before":
        found = query.where(*(k > bound for k in keys)).order_by(keys[0].asc())
    else:
        if side == "after":
            query = query.where(*(k < bound for k in keys))
        found = query.order_by(keys[0].desc())
    found = found.limit(size + 1)
    if reuse is not None:
        _REUSED[(reuse, side, size)] = found
    return found


def _fetch(session: Session, query: Select[Any], params: dict, scalars: bool) -> list[Any]:
    result = session.execute(query, params)
    return list(result.scalars() if scalars else result.all())
