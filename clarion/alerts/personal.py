"""Personalisation fields: `{{ first_name | default("friend") }}` in a subject or Markdown text.

Editors may name only the fields of FIELDS, each optionally with `default("…")`: nothing else
of Jinja is evaluated in what they write (no statements, no other filters), so no editor text
can reach a reader's other data. A field is swapped for an alphanumeric sentinel before the
text is rendered, and the sentinel for the reader's value (escaped) after; the freeze turns
it into a marker that the message builder fills per recipient, the fallback carried inside.
The reader's address is never a field: a forwarded mail must not give it away.
"""

from __future__ import annotations

import html as htmllib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from clarion import i18n
from clarion.config import get_settings
from clarion.errors import ValidationError

# What a field shows: the first word of the reader's name, the whole name, the name of the
# language the mail is in. Unsubscribe and preferences links are in every footer already.
FIELDS = ("first_name", "name", "language")
# Filled per recipient by the message builder; `language` is known when the mail is rendered.
PER_RECIPIENT = ("first_name", "name")
MAX_FALLBACK = 100
FALLBACK_SEPARATOR = "\ue004"

_EXPRESSION_RE = re.compile(r"\{\{(.*?)\}\}", re.S)
_OTHER_JINJA_RE = re.compile(r"\{%|\{#|\{\{")
_STRING = r"""(?:"([^"\\{}]*)"|'([^'\\{}]*)')"""
_FIELD_RE = re.compile(
    rf"""^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*{_STRING}\s*\))?\s*)?$"""
)
_MARKS_RE = re.compile("[\ue000-\ue004]")
_ATTRIBUTE_RE = re.compile(r"""\b(?:href|src)\s*=\s*(["'])(.*?)\1""", re.I | re.S)


@dataclass(frozen=True)
class Field:
    """One use of a field in editor text: which field, and what shows when it is empty."""

    name: str
    fallback: str = ""


def _known() -> str:
    return ", ".join(f"{{{{ {name} }}}}" for name in FIELDS)


def parse_one(expression: str) -> Field:
    """The field inside one `{{ … }}`; ValidationError says what to write instead."""
    shown = "{{" + expression + "}}"
    found = _FIELD_RE.match(expression)
    if found is None:
        raise ValidationError(
            {
                "": i18n.admin_gettext(
                    "Cannot use %(expression)s: write a field as {{ first_name }} or "
                    '{{ first_name | default("friend") }}; the fields are %(fields)s.',
                    expression=shown,
                    fields=_known(),
                )
            }
        )
    name, flt, double, single = found.groups()
    if name not in FIELDS:
        raise ValidationError(
            {
                "": i18n.admin_gettext(
                    "Unknown field %(expression)s: use one of %(fields)s.",
                    expression=shown,
                    fields=_known(),
                )
            }
        )
    fallback = double if double is not None else single
    if flt is not None and (flt != "default" or fallback is None):
        raise ValidationError(
            {
                "": i18n.admin_gettext(
                    'Cannot use %(expression)s: the only filter is default("…"), the text '
                    "shown when the reader has no value.",
                    expression=shown,
                )
            }
        )
    # Private-use marks delimit the freeze's markers: never inside a fallback.
    fallback = " ".join(_MARKS_RE.sub("", fallback or "").split())
    if len(fallback) > MAX_FALLBACK:
        raise ValidationError(
            {
                "": i18n.admin_gettext(
                    "Keep the default of %(expression)s under %(max)s characters.",
                    expression=shown,
                    max=MAX_FALLBACK,
                )
            }
        )
    return Field(name, fallback)


def fields_in(text: str) -> list[Field]:
    """Every field the text uses, in order; ValidationError names the first it cannot use."""
    found = []
    rest = _EXPRESSION_RE.sub(lambda m: found.append(parse_one(m.group(1))) or "", text or "")
    stray = _OTHER_JINJA_RE.search(rest)
    if stray is not None:
        raise ValidationError(
            {
                "": i18n.admin_gettext(
                    "Only fields like {{ first_name }} may be used here; remove or close "
                    "%(what)s (the fields are %(fields)s).",
                    what=stray.group(0),
                    fields=_known(),
                )
            }
        )
    return found


def check(texts: Mapping[str, str], errors: dict[str, str]) -> None:
    """Each text's fields checked; problems go into `errors` under the text's key."""
    for where, text in texts.items():
        try:
            fields_in(text)
        except ValidationError as exc:
            errors.setdefault(where, exc.errors[""])


def language_values(lang: str) -> dict[str, str]:
    """The fields known when a mail is rendered in `lang`: its language's name."""
    return {"language": dict(get_settings().languages).get(lang, lang)}


def reader_values(name: str | None) -> dict[str, str]:
    """The per-recipient fields of a reader with this name (empty when we have none)."""
    full = " ".join((name or "").split())
    return {"first_name": full.split(" ")[0] if full else "", "name": full}


class Swaps:
    """The sentinels standing for fields in one rendering, and how to put values back."""

    def __init__(self) -> None:
        self._prefix = f"zq{secrets.token_hex(8)}pf"
        self.fields: dict[str, Field] = {}
        self.where: dict[str, str] = {}

    def swap_in(self, text: str, where: str) -> str:
        """Each field of `text` replaced by an alphanumeric sentinel that Markdown, MJML and
        autoescaping leave as it is. What is not a field stays text, shown as typed: saving
        refuses it (`check`), but an alert saved before fields existed still renders."""

        def sentinel(match: re.Match[str]) -> str:
            try:
                field = parse_one(match.group(1))
            except ValidationError:
                return match.group(0)
            key = f"{self._prefix}{len(self.fields)}x"
            self.fields[key] = field
            self.where[key] = where
            return key

        return _EXPRESSION_RE.sub(sentinel, text or "")

    def check_not_in_links(self, html: str) -> None:
        """Refuse a field inside a link's or image's address: it would send the reader's name
        to whichever server the address names."""
        for _quote, value in _ATTRIBUTE_RE.findall(html):
            for key in self.fields:
                if key in value:
                    raise ValidationError(
                        {
                            self.where[key]: i18n.admin_gettext(
                                "A field cannot be part of a link's or image's address: it "
                                "would tell that server the reader's name. Put it in the text."
                            )
                        }
                    )

    def fill(self, text: str, values: Mapping[str, str], *, escape: bool) -> str:
        """The sentinels replaced by each reader value, or its fallback when it is empty."""
        for key, field in self.fields.items():
            value = values.get(field.name) or field.fallback
            text = text.replace(key, htmllib.escape(value) if escape else value)
        return text

    def mark(self, text: str, values: Mapping[str, str], marker, *, escape: bool) -> str:
        """Sentinels of per-recipient fields replaced by `marker(token)` (the token carries the
        field and its fallback, escaped for HTML when `escape`); the others by their value."""
        for key, field in self.fields.items():
            if field.name in PER_RECIPIENT:
                fallback = htmllib.escape(field.fallback) if escape else field.fallback
                replacement = marker(f"{field.name}{FALLBACK_SEPARATOR}{fallback}")
            else:
                value = values.get(field.name) or field.fallback
                replacement = htmllib.escape(value) if escape else value
            text = text.replace(key, replacement)
        return text


def split_slot(slot: str) -> tuple[str, str]:
    """A marker's inside as its field and the fallback it carries ("" for none)."""
    name, _sep, fallback = slot.partition(FALLBACK_SEPARATOR)
    return name, fallback
