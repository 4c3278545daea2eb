"""The directory's unfiltered page of chosen columns, built on the Core path, is the same query
as the general filter's with no filter set: a condition added to one must reach the other."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from clarion.audience.directory import SubscriberFilter, _everyone, filtered
from clarion.models import Subscriber

COLUMNS = tuple(Subscriber.__table__.c[name] for name in ("id", "email", "name", "created_at"))


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()], ids=str)
def test_the_unfiltered_page_is_the_filter_with_nothing_set(dialect):
    general, general_key = filtered(SubscriberFilter())
    shortcut, shortcut_key = _everyone(COLUMNS)
    as_sql = lambda q: str(q.compile(dialect=dialect))  # noqa: E731
    assert as_sql(shortcut) == as_sql(general.with_only_columns(*COLUMNS))
    assert [c.name for c in shortcut_key] == [c.name for c in general_key]
