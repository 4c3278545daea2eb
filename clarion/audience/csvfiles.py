"""Reading CSV files people export from spreadsheets: encodings, delimiters, broken quotes."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass

from clarion.errors import ValidationError
from clarion.i18n import admin_gettext

ENCODINGS = {
    "utf-8": "UTF-8",
    "cp1251": "Cyrillic (Windows-1251)",
    "cp1252": "Western European (Windows-1252 / Latin-1)",
    "utf-16": "UTF-16 (Excel “Unicode text”)",
}
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Decoded:
    """A file's text and the encoding it was read with."""

    text: str
    encoding: str


def decode(data: bytes, encoding: str = "auto") -> Decoded:
    """Read bytes as text: a BOM decides, else UTF-8, else Cyrillic or Western by the words."""
    if data.startswith(codecs.BOM_UTF8):
        return Decoded(_strict(data[3:], "utf-8"), "utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Decoded(_strict(data, "utf-16"), "utf-16")
    if encoding == "utf-16":
        return Decoded(_strict(data, "utf-16"), "utf-16")
    check_text(data)
    if encoding != "auto":
        if encoding not in ENCODINGS:
            choices = ", ".join(ENCODINGS)
            raise ValidationError(
                {"encoding": admin_gettext("Choose one of: %(choices)s.", choices=choices)}
            )
        return Decoded(_strict(data, encoding), encoding)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    guess = _single_byte_guess(data)
    if guess is None:
        raise ValidationError(
            {
                "encoding": admin_gettext(
                    "This file is not UTF-8, and Clarion cannot tell whether it is Cyrillic "
                    "(Windows-1251) or Western (Windows-1252 / Latin-1). Choose the encoding, "
                    "or save the file as “CSV UTF-8” and upload it again."
                )
            }
        )
    return Decoded(_strict(data, guess), guess)


def check_text(data: bytes) -> None:
    """Refuse empty files and binary ones (a spreadsheet uploaded instead of its CSV)."""
    if not data.strip():
        raise ValidationError({"file": admin_gettext("The file is empty.")})
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationError(
            {
                "file": admin_gettext(
                    "This is not a CSV text file (it contains zero bytes); "
                    "in your spreadsheet, use “Save as… CSV UTF-8”."
                )
            }
        )


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        label = ENCODINGS.get(encoding, encoding)
        line = data.count(b"\n", 0, exc.start) + 1
        byte = f"0x{data[exc.start]:02x}"
        raise ValidationError(
            {
                "encoding": admin_gettext(
                    "This file is not valid %(encoding)s: byte %(byte)s on line %(line)s does "
                    "not fit. Choose another encoding or save the file as “CSV UTF-8”.",
                    encoding=label,
                    byte=byte,
                    line=line,
                )
            }
        ) from None


def _single_byte_guess(data: bytes) -> str | None:
    """cp1251 when non-ASCII words are wholly Cyrillic; cp1252 when accents sit in Latin words."""
    try:
        as_cyrillic = data.decode("cp1251")
    except UnicodeDecodeError:
        as_cyrillic = None
    western_ok = _decodes(data, "cp1252")
    if as_cyrillic is None:
        return "cp1252" if western_ok else None
    cyrillic = western = 0
    for word in _WORD.findall(as_cyrillic):
        if word.isascii():
            continue
        has_latin = any("a" <= c.lower() <= "z" for c in word)
        has_cyrillic = any("\u0400" <= c <= "\u04ff" for c in word)
        if has_cyrillic and not has_latin:
            cyrillic += 1
        elif has_cyrillic and has_latin:
            western += 1  # "Josй", "Mьller": accented Latin letters read as Cyrillic
    if cyrillic > western:
        return "cp1251"
    if western > cyrillic and western_ok:
        return "cp1252"
    return None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon (European Excel) or tab, from the first lines."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in ",;\t"}
        return max(counts, key=lambda d: counts[d])


def records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | None, str]]:
    """(first line, cells or None, error) for each record of the file.

    A stray quote makes a CSV reader swallow every line up to the next quote (often the end
    of the file); the lines of such a span are read again one by one, so only the line with
    the broken quoting is lost.
    """
    lines = text.splitlines(keepends=True)
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            yield start, next(reader), ""
        except StopIteration:
            return
        except csv.Error:
            for number in range(start, reader.line_num + 1):
                yield from _single_line(lines[number - 1], number, delimiter)


def _single_line(
    line: str, number: int, delimiter: str
) -> Iterator[tuple[int, list[str] | None, str]]:
    try:
        yield number, next(csv.reader([line], delimiter=delimiter, strict=True)), ""
    except (csv.Error, StopIteration) as exc:
        why = admin_gettext('a quote (") is opened and never closed')
        if "expected after" in str(exc):
            why = admin_gettext('text follows a closing quote (") inside a cell')
        yield (
            number,
            None,
            admin_gettext("Malformed CSV on line %(line)s: %(why)s.", line=number, why=why),
        )
