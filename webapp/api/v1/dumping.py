"""Answers dumped by the marshmallow schemas, in one plain pass compiled from those schemas.

marshmallow's own dump looks every value up through five calls (field, schema accessor,
utils, type checks) and costs about 1.5 ms for a page of 50 readers; the same output built by
a function per schema, made once from the schema's fields, costs a fraction of that. The
schema stays the one description of an answer (the OpenAPI document is made of it): a field
type this module does not know, a dotted attribute or a schema with dump hooks is dumped by
marshmallow itself, so the output is always what marshmallow would give
(tests/unit/webapp/test_api_dumping.py compares them for every answer schema).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow
from marshmallow import fields as mf
from marshmallow.utils import missing

Dumper = Callable[[Any], Any]

# Fields whose _serialize(value) depends on the value alone (not on the attribute's name or on
# the object holding it), so that it can be called without marshmallow's lookup around it.
_VALUE_ONLY = (
    mf.Boolean,
    mf.Date,
    mf.DateTime,
    mf.Decimal,
    mf.Dict,
    mf.Email,
    mf.Float,
    mf.Integer,
    mf.Raw,
    mf.String,
    mf.Time,
    mf.Url,
    mf.UUID,
)


def _lookup(obj: Any, key: str) -> Any:
    """marshmallow.utils._get_value_for_key without the dotted path: item, else attribute."""
    if not hasattr(obj, "__getitem__"):
        return getattr(obj, key, missing)
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, key, missing)


def _text(value: Any) -> Any:
    return value if value is None or type(value) is str else str(value)


def _value_dumper(field: mf.Field) -> Dumper | None:
    """value -> dumped value, or None when the field needs marshmallow's whole path."""
    kind = type(field)
    if kind is mf.String:
        return _text
    if kind is mf.Integer and not field.as_string:
        return lambda v: v if v is None or type(v) is int else int(v)
    if kind is mf.Nested:
        inner = compile_schema(field.schema)
        many = field.many or field.schema.many
        if field.schema.many:
            return lambda v: None if v is None else inner(v)
        if many:
            return lambda v: None if v is None else [inner(x) for x in v]
        return lambda v: None if v is None else inner(v)
    if kind is mf.List:
        each = _value_dumper(field.inner)
        if each is None:
            return None
        return lambda v: None if v is None else [each(x) for x in v]
    if isinstance(field, _VALUE_ONLY) and kind.__module__ == mf.__name__:
        serialize = field._serialize
        return lambda v: serialize(v, None, None)
    return None


def _field_dumper(schema: marshmallow.Schema, name: str, field: mf.Field) -> Dumper:
    """obj -> the field's dumped value, or `missing` when the object does not have it."""
    key = field.attribute or name
    value_of = _value_dumper(field)
    if value_of is None or "." in key or not field._CHECK_ATTRIBUTE:
        return lambda obj: field.serialize(name, obj, accessor=schema.get_attribute)
    default = field.dump_default

    def dumped(obj: Any) -> Any:
        if type(obj) is dict:  # what the views build: the same answer as _lookup, sooner
            value = obj.get(key, missing)
            if value is missing:
                value = getattr(obj, key, missing)
        else:
            value = _lookup(obj, key)
        if value is missing:
            value = default() if callable(default) else default
            if value is missing:
                return missing
        return value_of(value)

    return dumped


_COMPILED: dict[int, tuple[marshmallow.Schema, Dumper]] = {}


def compile_schema(schema: marshmallow.Schema) -> Dumper:
    """The function that dumps what `schema.dump` would (a list when the schema is `many`)."""
    known = _COMPILED.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    if schema._hooks.get("pre_dump") or schema._hooks.get("post_dump"):
        dumper: Dumper = schema.dump
    else:
        one = _generated(schema)
        dumper = (lambda objs: [one(x) for x in objs]) if schema.many else one
    _COMPILED[id(schema)] = (schema, dumper)  # the schema is kept: its id stays its own
    return dumper


def _generated(schema: marshmallow.Schema) -> Dumper:
    """One object -> its dumped dict, as Python source made from the fields and compiled.

    A page of 50 readers is 450 values: a call per value (the field's part, then its value
    dumper) cost more than the values themselves, so a dict's values are read and converted
    inline. Whatever the inline path does not cover (an object instead of a dict, a key the
    dict lacks, a field marshmallow must dump itself) goes through the field's part, the
    general path above.
    """
    names: dict[str, Any] = {"missing": missing}
    lines = ["def one(obj):", "    if type(obj) is not dict:", "        return general(obj)"]
    lines += ["    get = obj.get", "    out = {}"]
    parts = []
    for n, (name, field) in enumerate(schema.dump_fields.items()):
        out_key = field.data_key if field.data_key is not None else name
        key = field.attribute or name
        part = _field_dumper(schema, name, field)
        parts.append((out_key, part))
        names[f"part{n}"] = part
        value = _inline(field, "v", names, f"f{n}")
        if value is None or "." in key or not field._CHECK_ATTRIBUTE:
            lines += [
                f"    v = part{n}(obj)",
                "    if v is not missing:",
                f"        out[{out_key!r}] = v",
            ]
            continue
        lines += [
            f"    v = get({key!r}, missing)",
            "    if v is missing:",  # not in the dict: an attribute, a default, or left out
            f"        v = part{n}(obj)",
            "        if v is not missing:",
            f"            out[{out_key!r}] = v",
            "    else:",
            f"        out[{out_key!r}] = {value}",
        ]
    lines.append("    return out")

    def general(obj: Any) -> dict[str, Any]:
        out = {}
        for key, part in parts:
            value = part(obj)
            if value is not missing:
                out[key] = value
        return out

    names["general"] = general
    # Made only of the schema's own field names and keys, each written as a repr().
    exec(compile("\n".join(lines), f"<dumper of {type(schema).__name__}>", "exec"), names)  # noqa: S102
    return names["one"]


def _inline(field: mf.Field, var: str, names: dict[str, Any], tag: str) -> str | None:
    """A Python expression of `var` that `_value_dumper(field)` computes, with the functions it
    needs put into `names`; None when that dumper is None (marshmallow's whole path)."""
    kind = type(field)
    if kind is mf.String:
        return f"({var} if {var} is None or type({var}) is str else str({var}))"
    if kind is mf.Integer and not field.as_string:
        return f"({var} if {var} is None or type({var}) is int else int({var}))"
    if kind is mf.DateTime and field.format in ("iso", "iso8601"):
        # What DateTime._serialize calls for these formats (the format is set once bound).
        names[tag] = field.SERIALIZATION_FUNCS[field.format]
        return f"(None if {var} is None else {tag}({var}))"
    if kind is mf.Nested:
        names[tag] = compile_schema(field.schema)
        if field.many and not field.schema.many:
            return f"(None if {var} is None else [{tag}(x_{tag}) for x_{tag} in {var}])"
        return f"(None if {var} is None else {tag}({var}))"
    if kind is mf.List:
        each = _inline(field.inner, f"x_{tag}", names, f"{tag}i")
        if each is None:
            return None
        return f"(None if {var} is None else [{each} for x_{tag} in {var}])"
    value_of = _value_dumper(field)
    if value_of is None:
        return None
    names[tag] = value_of
    return f"{tag}({var})"
