"""Keyset paging: pages found through an index by the last key seen, never by OFFSET."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select
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
) -> Page[Any]:
    """One page of `query` ordered by `key` descending, found by seeking to the given key.

    `key` may be several columns that a join makes equal (subscriptions.subscriber_id and
    subscribers.id): the bound is put on each, since the planner does not carry an inequality
    across a join, and would otherwise walk one side's index from its very end.
    """
    keys = key if isinstance(key, tuple) else (key,)
    order = keys[0]
    if before is not None:
        bounded = query.where(*(k > before for k in keys))
        rows = _fetch(session, bounded.order_by(order.asc()), size, scalars)
        more_newer = len(rows) > size
        items = list(reversed(rows[:size]))
        return Page(
            items,
            after=key_of(items[-1]) if items else None,
            before=key_of(items[0]) if items and more_newer else None,
        )
    if after is not None:
        query = query.where(*(k < after for k in keys))
    rows = _fetch(session, query.order_by(order.desc()), size, scalars)
    items = rows[:size]
    return Page(
        items,
        after=key_of(items[-1]) if len(rows) > size else None,
        before=key_of(items[0]) if items and after is not None else None,
    )


def _fetch(session: Session, query: Select[Any], size: int, scalars: bool) -> list[Any]:
    result = session.execute(query.limit(size + 1))
    return list(result.scalars() if scalars else result.all())
