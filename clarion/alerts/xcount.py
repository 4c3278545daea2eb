"""Post length as X counts it (twitter-text v3): URLs are 23, most CJK and emoji count 2."""

from __future__ import annotations

import re

MAX_WEIGHTED_LENGTH = 280
URL_LENGTH = 23
# Code point ranges that weigh 1; everything else weighs 2 (twitter-text's default config).
LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
URL_RE = re.compile(
    r"https?://[^\s<>\"]+|(?<![\w@])(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/[^\s<>\"]*)?", re.I
)
# An emoji with its modifiers and joiners counts as one character of weight 2.
EMOJI_SEQUENCE = re.compile(
    "(?:[\U0001f000-\U0001faff\u2600-\u27bf]\ufe0f?[\U0001f3fb-\U0001f3ff]?"
    "(?:\u200d[\U0001f000-\U0001faff\u2600-\u27bf]\ufe0f?[\U0001f3fb-\U0001f3ff]?)*)"
)


def _weight(ch: str) -> int:
    cp = ord(ch)
    return 1 if any(lo <= cp <= hi for lo, hi in LIGHT_RANGES) else 2


def weighted_length(text: str) -> int:
    """The length X shows for `text` (after Unicode NFC normalisation)."""
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for match in URL_RE.finditer(text):
        total += _plain_length(text[position : match.start()]) + URL_LENGTH
        position = match.end()
    return total + _plain_length(text[position:])


def _plain_length(text: str) -> int:
    total = 0
    position = 0
    for match in EMOJI_SEQUENCE.finditer(text):
        total += sum(_weight(c) for c in text[position : match.start()]) + 2
        position = match.end()
    return total + sum(_weight(c) for c in text[position:])


def fits(text: str) -> bool:
    """True when `text` can be posted on X as one post."""
    return weighted_length(text) <= MAX_WEIGHTED_LENGTH
