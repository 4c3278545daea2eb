"""Header fields on the wire: RFC 2047 encoded-words of at most 75 characters, folded.

The standard library writes words of 76 characters (`email.header.Header`), one word of any
length (`formataddr` with a charset), or folds a word onto a line of its own with two spaces
(`email.policy`). Built once per alert and per transactional mail, so plain Python suffices.
"""

from __future__ import annotations

import base64
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import formataddr

WORD_LIMIT = 75  # RFC 2047 2: an encoded-word is at most 75 characters
LINE_LIMIT = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
_OPEN, _CLOSE = "=?utf-8?b?", "?="


def _word_length(n_bytes: int) -> int:
    return len(_OPEN) + len(_CLOSE) + 4 * -(-n_bytes // 3)


def _word(chunk: bytes) -> str:
    return f"{_OPEN}{base64.b64encode(chunk).decode()}{_CLOSE}"


def encoded_words(text: str, used: int = 0, linesep: str = "\r\n") -> str:
    """`text` as B encoded-words of at most 75 characters, one a line, folded with `linesep`
    and a space; `used`: the characters before it on the first line ("Subject: " is 9).
    A character is never split between two words (RFC 2047 5)."""
    budget = max(min(WORD_LIMIT, LINE_LIMIT - used), _word_length(4))
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode()
        if chunk and _word_length(len(chunk) + len(data)) > budget:
            words.append(_word(chunk))
            chunk, budget = b"", WORD_LIMIT  # a folded line starts with one space: 76 ≤ 78
        chunk += data
    words.append(_word(chunk))
    return f"{linesep} ".join(words)


def header_value(text: str, used: int = 0, linesep: str = "\r\n") -> str:
    """An unstructured header value (Subject): ASCII as it is, anything else encoded-words."""
    return text if text.isascii() else encoded_words(text, used, linesep)


def address_field(name: str, address: str, used: int = 0, linesep: str = "\r\n") -> str:
    """`Name <address>` for From, Reply-To and List-Id: a non-ASCII name as encoded-words (a
    phrase may be nothing else), the address folded onto a line of its own when it must be."""
    if not name or name.isascii():
        return formataddr((name, address))
    phrase = encoded_words(name, used, linesep)
    last = phrase.rpartition(linesep)[2]
    tail = f"<{address}>"
    room = LINE_LIMIT - (len(last) + (used if last == phrase else 0)) - 1
    return f"{phrase} {tail}" if len(tail) <= room else f"{phrase}{linesep} {tail}"


def decoded(text: str) -> str:
    """A display name with any encoded-words decoded (a stored `formataddr` holds them), so
    that it is encoded once, here, in words that fit; the text as it is when they are broken."""
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text
