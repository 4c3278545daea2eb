"""Quoted-printable body parts already in DKIM's relaxed canonical form, encoded piece by piece.

A part's frozen text is literal chunks with slots for each reader's values. Base64 has to
encode the whole part again for every reader (a value shifts everything after it); quoted-
printable encodes each byte on its own, so the literal chunks are encoded once per alert and
only the few short values per message. Every piece starts on a line of its own (a soft line
break, `=` CRLF, ends the piece before it), so no line is longer than RFC 2045's 76 characters
wherever the values fall.

The result is also its own relaxed canonical form (RFC 6376 3.4.4), as base64 was: a tab, a
space after a space or tab, a trailing space and a bare CR are written encoded, so the body
hash is SHA-256 of the bytes on the wire. binascii.b2a_qp does the encoding (in C, ~1 µs for
a value); the three cases it would leave literal are handed to it as control bytes it always
encodes, and their `=XX` renamed afterwards: the same length, so its line breaks stay right.
"""

from __future__ import annotations

import binascii
import re

SOFT_BREAK = b"=\r\n"
MAX_LINE = 76  # RFC 2045 6.7 (5), the soft break's "=" included
# Stand-ins that b2a_qp always encodes, and what their encoding becomes; input holding them
# loses them first (C0 controls that have no business in mail text).
_STAND_INS = ((b"\x00", b"=00", b"=09"), (b"\x01", b"=01", b"=20"), (b"\x02", b"=02", b"=0D"))
_RUN_SPACE = re.compile(rb"(?<=[ \x00]) ")  # a space after a space or a tab
_AWKWARD = re.compile(rb"[\x00-\x02\t\r]|  ")  # anything b2a_qp alone would get wrong here


def encode(data: bytes) -> bytes:
    """`data` (CRLF or LF line ends) as canonical quoted-printable with CRLF line ends; the
    last line is left without a soft break."""
    if _AWKWARD.search(data):
        for raw, _, _ in _STAND_INS:
            data = data.replace(raw, b"")
        data = data.replace(b"\r\n", b"\n").replace(b"\t", b"\x00").replace(b"\r", b"\x02")
        data = _RUN_SPACE.sub(b"\x01", data)
        out = binascii.b2a_qp(data)
        for _, placeholder, real in _STAND_INS:
            out = out.replace(placeholder, real)
    else:
        out = binascii.b2a_qp(data)
    return out.replace(b"\n", b"\r\n") if b"\n" in out else out


def piece(data: bytes) -> bytes:
    """`data` encoded as a piece followed by another: ending in a line break (its own hard one
    or a soft one), so the next piece starts a line; empty data stays empty."""
    out = encode(data)
    if not out or out.endswith(b"\r\n"):
        return out
    start = out.rfind(b"\n") + 1
    if len(out) - start >= MAX_LINE:
        # b2a_qp lets the very last character fill a line to 76: no room for the "=". Move
        # that character (or its =XX) to a line of its own.
        cut = len(out) - (3 if out[-3:-2] == b"=" else 1)
        out = out[:cut] + SOFT_BREAK + out[cut:]
    return out + SOFT_BREAK


def worth_it(literal: bytes) -> bool:
    """Whether quoted-printable is no longer than base64 for this text (mostly ASCII)."""
    return len(encode(literal)) <= len(literal) * 4 // 3 + len(literal) // 57 * 2
