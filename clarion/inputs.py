"""Untrusted text made safe where it lands: mail headers, spreadsheet cells, whole numbers."""

from __future__ import annotations

import re
import unicodedata

from clarion.errors import ValidationError
from clarion.i18n import admin_gettext

# Cells starting with these are formulas to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
# The largest value a BIGINT column (and so any id or keyset cursor) can hold.
MAX_ID = 2**63 - 1


def has_control_chars(value: str) -> bool:
    """True when text holds a control character (CR, LF, tab, NUL, DEL, C1 …)."""
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def header_text(value: str) -> str:
    """Text safe for one mail header line: every control character (CR, LF…) becomes a space.

    Header values are built from what editors type (list names, sender names, subjects);
    a CR or LF in one would start a header of the typist's choosing.
    """
    if not has_control_chars(value):
        return value
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in value).split())


def csv_cell(value: object) -> str:
    """A cell for a CSV export: text a spreadsheet would run as a formula gets a leading '.

    Names, comments and even addresses (`=cmd@example.org` is valid) are chosen by whoever
    signs up, and an owner opens the export in a spreadsheet (CSV injection).
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def whole_number(raw: str, field_name: str, *, low: int = 0, high: int = MAX_ID) -> int:
    """A whole number written in ASCII digits within [low, high]; ValidationError otherwise.

    `str.isdigit()` accepts "²" and "٣", which int() then refuses or reads differently;
    and an unbounded integer overflows the database's BIGINT.
    """
    text = (raw or "").strip()
    if not _ASCII_DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise ValidationError(
            {
                field_name: admin_gettext(
                    "Expected a whole number from %(low)s to %(high)s, not %(text)s.",
                    low=low,
                    high=high,
                    text=repr(text[:20]),
                )
            }
        )
    return int(text)
