"""The compiled dumper of /api/v1 answers gives exactly what marshmallow's dump gives."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import marshmallow
import pytest
from marshmallow import fields as mf

from webapp.api.v1 import OPERATIONS, schemas
from webapp.api.v1.dumping import compile_schema


def _sample(field: mf.Field, variant: int) -> Any:
    """A value for `field`; variant 1 gives None where allowed, variant 2 odd-but-valid types."""
    if variant == 1 and field.allow_none:
        return None
    if isinstance(field, mf.Nested):
        inner = _record(field.schema, variant)
        return [inner, _record(field.schema, 0)] if field.many or field.schema.many else inner
    if isinstance(field, mf.List):
        return [_sample(field.inner, variant), _sample(field.inner, 0)]
    if isinstance(field, mf.DateTime):
        return datetime(2026, 12, 3, 18, 5, 7, 1234, tzinfo=UTC)
    if isinstance(field, mf.Boolean):
        return [True, 0, "false"][variant]
    if isinstance(field, mf.Integer):
        return [7, 8, 9.0][variant]
    if isinstance(field, mf.Float):
        return [1.5, 2, 3][variant]
    if isinstance(field, mf.Dict):
        if field.value_field is not None:
            return {"a": _sample(field.value_field, variant), "b": _sample(field.value_field, 0)}
        return {"a": "b", "n": 1}
    if isinstance(field, mf.String):
        return ["text", "ü", 42][variant]
    return {"raw": [1, 2]} if variant else date(2026, 1, 2)


def _record(schema: marshmallow.Schema, variant: int) -> dict[str, Any]:
    return {name: _sample(f, variant) for name, f in schema.dump_fields.items()}


def _answer_schemas() -> list[type[marshmallow.Schema]]:
    found = {op.response for op in OPERATIONS if op.response is not None}
    found |= {
        c
        for _, c in inspect.getmembers(schemas, inspect.isclass)
        if issubclass(c, schemas.Out) and c is not schemas.Out
    }
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.parametrize("schema_class", _answer_schemas(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_same_output_as_marshmallow(schema_class, variant):
    schema = schema_class()
    data = _record(schema, variant)
    assert compile_schema(schema)(data) == schema.dump(data)
    as_object = SimpleNamespace(**data)  # views also hand in objects, not only dicts
    assert compile_schema(schema)(as_object) == schema.dump(as_object)
    many = schema_class(many=True)
    page = [data, _record(schema, 0)]
    assert compile_schema(many)(page) == many.dump(page)


def test_missing_values_are_left_out_and_defaults_used():
    class Out(marshmallow.Schema):
        a = mf.Integer()
        b = mf.String(dump_default="b")
        c = mf.String(data_key="see")
        d = mf.Method("twice")

        def twice(self, obj):
            return obj["a"] * 2

    schema = Out()
    for data in ({"a": 1}, {"a": 2, "c": "x"}, {"a": 3, "b": None}):
        assert compile_schema(schema)(data) == schema.dump(data)


def test_dump_hooks_are_honoured():
    class Out(marshmallow.Schema):
        a = mf.Integer()

        @marshmallow.post_dump
        def more(self, data, **_):
            return {**data, "more": True}

    schema = Out()
    assert compile_schema(schema)({"a": 1}) == {"a": 1, "more": True}


def test_plain_dicts_dumped_as_marshmallow_looks_them_up_item_then_attribute():
    class Out(marshmallow.Schema):
        a = mf.Integer()
        copy = mf.String()  # absent from the dict: marshmallow falls back to dict.copy
        missing_one = mf.String()

    schema = Out()
    for data in ({"a": 1}, {"a": 2, "copy": "x", "missing_one": None}, {}):
        assert compile_schema(schema)(data) == schema.dump(data)

    class Mapping(dict):  # not a plain dict: the general lookup
        pass

    other = Mapping(a=3)
    assert compile_schema(schema)(other) == schema.dump(other)
