"""db.among: `IN` on SQLite, one array literal on PostgreSQL, exact for any text or id."""

from __future__ import annotations

from sqlalchemy import select

from clarion import db
from clarion.models import Tag

TRICKY = [
    'a "quoted" name',
    "back\\slash\\",
    "comma, and {braces}",
    "  spaces  ",
    "NULL",
    "",
    "кириллица ü",
    "'apostrophe'",
]


def test_among_finds_exactly_the_values_given(session):
    session.add_all(Tag(name=name) for name in [*TRICKY, "other", "null"])
    session.commit()
    found = session.scalars(select(Tag.name).where(db.among(session, Tag.name, TRICKY)))
    assert sorted(found) == sorted(TRICKY)
    ids = session.scalars(select(Tag.id).where(Tag.name.in_(TRICKY[:3]))).all()
    by_id = session.scalars(select(Tag.name).where(db.among(session, Tag.id, set(ids))))
    assert sorted(by_id) == sorted(TRICKY[:3])
    assert session.scalars(select(Tag.id).where(db.among(session, Tag.id, []))).all() == []


def test_among_bound_finds_the_same_values_with_one_statement_built_once(session):
    session.add_all(Tag(name=name) for name in [*TRICKY, "other", "null"])
    session.commit()
    dialect = session.get_bind().dialect.name
    by_name = select(Tag.name).where(db.among_bound(dialect, Tag.name, "names"))
    by_id = select(Tag.name).where(db.among_bound(dialect, Tag.id, "ids"))

    def names(values):
        return sorted(
            session.scalars(by_name, {"names": db.among_values(dialect, Tag.name, values)})
        )

    assert names(TRICKY) == sorted(TRICKY)
    assert names(["other"]) == ["other"]
    assert names([]) == []
    ids = session.scalars(select(Tag.id).where(Tag.name.in_(TRICKY[:3]))).all()
    found = session.scalars(by_id, {"ids": db.among_values(dialect, Tag.id, set(ids))})
    assert sorted(found) == sorted(TRICKY[:3])
