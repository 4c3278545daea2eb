"""Freezing an alert at send time: one rendering with markers where each recipient differs.

The layout is rendered and MJML compiled once, with unique random strings as the recipient
fields (layouts never branch on them); those strings are then swapped for markers, and every
web link is rewritten to a tracked `/r/<delivery token>/<n>`. Per recipient, the message
builder only splits on the markers and fills in a few strings: no parsing, no rendering.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from clarion.alerts import personal
from clarion.alerts.rendering import (
    RECIPIENT_FIELDS,
    UNTRACKED_CLOSE,
    UNTRACKED_OPEN,
    AlertContent,
    SiteContext,
    render_alert,
    strip_untracked,
)

# Private-use code points: they mean nothing in mail, so they can delimit our markers.
MARK_OPEN = "\ue000"
MARK_CLOSE = "\ue001"
# What is filled per recipient: the recipient fields, the delivery token of tracked links and
# the personalisation fields, whose markers carry their fallback ("first_name\ue004friend").
FIELDS = (*RECIPIENT_FIELDS, "token", *personal.PER_RECIPIENT)
MARKER_RE = re.compile(
    f"{MARK_OPEN}([a-z_]+(?:{personal.FALLBACK_SEPARATOR}[^{MARK_OPEN}{MARK_CLOSE}]*)?){MARK_CLOSE}"
)

_TAG_RE = re.compile(r"<(?:a|area)\b[^>]*>", re.I)
_HREF_RE = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
_TEXT_URL_RE = re.compile(r"""https?://[^\s<>"'()\[\]]+""")
_TRAILING = ".,;:!?"
_UNTRACKED_RE = re.compile(f"{UNTRACKED_OPEN}(.*?){UNTRACKED_CLOSE}", re.S)


def marker(name: str) -> str:
    """The marker standing for field `name` in frozen content."""
    return f"{MARK_OPEN}{name}{MARK_CLOSE}"


@dataclass(frozen=True)
class FrozenContent:
    """What every recipient gets, with markers: subject, HTML, text, the tracked links."""

    subject: str
    html: str
    text: str
    links: list[str]
    hash: str


class LinkTable:
    """Original URLs by index; the same URL keeps one index wherever it appears."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.urls: list[str] = []
        self._index: dict[str, int] = {}

    def tracked(self, url: str) -> str:
        """The tracked URL standing for `url`."""
        n = self._index.get(url)
        if n is None:
            n = self._index[url] = len(self.urls)
            self.urls.append(url)
        return f"{self.base_url}/r/{marker('token')}/{n}"


def _is_trackable(url: str) -> bool:
    # Unsubscribe and preferences links are markers, not web links: they stay direct; so do
    # links a layout marked `untracked` (the privacy policy: who reads it is nobody's business).
    return (
        url.lower().startswith(("http://", "https://"))
        and MARK_OPEN not in url
        and UNTRACKED_OPEN not in url
    )


def rewrite_html_links(html: str, links: LinkTable) -> str:
    """Every http(s) href of <a> and <area> replaced by its tracked URL, but those marked
    untracked, which keep their own address."""

    def href(match: re.Match[str]) -> str:
        url = htmllib.unescape(match.group(3)).strip()
        if not _is_trackable(url):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{links.tracked(url)}{match.group(2)}"

    return strip_untracked(_TAG_RE.sub(lambda tag: _HREF_RE.sub(href, tag.group(0)), html))


def rewrite_text_links(text: str, links: LinkTable) -> str:
    """Every http(s) URL in plain text replaced by its tracked URL (trailing punctuation kept),
    but in text a reader is asked to copy (marked untracked): that keeps the public link."""

    def url(match: re.Match[str]) -> str:
        found = match.group(0)
        stripped = found.rstrip(_TRAILING)
        if not _is_trackable(stripped):
            return found
        return links.tracked(stripped) + found[len(stripped) :]

    # split() with one group: even items are ordinary text, odd items are untracked text.
    parts = _UNTRACKED_RE.split(text)
    parts[::2] = [_TEXT_URL_RE.sub(url, part) for part in parts[::2]]
    return strip_untracked("".join(parts))  # and any stray mark an editor typed


def _sentinels() -> dict[str, str]:
    # Alphanumeric, so autoescaping, MJML and Markdown leave them exactly as they are.
    return {name: f"zq{secrets.token_hex(10)}{name.replace('_', '')}" for name in RECIPIENT_FIELDS}


def _strip_marks(value: str) -> str:
    return value.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


def freeze_content(
    content: AlertContent,
    site: SiteContext,
    layout_mjml: str | None = None,
    lang: str | None = None,
    links: LinkTable | None = None,
) -> FrozenContent:
    """Render once in `lang` with sentinels, swap them for markers, rewrite links to tracked.

    Versions of one alert share `links`, so that a link keeps its index in every language.
    """
    sentinels = _sentinels()
    swaps = personal.Swaps()
    mail = render_alert(
        content, sentinels, site, layout_mjml, lang, keep_untracked=True, swaps=swaps
    )
    subject, html, text = (_strip_marks(v) for v in (mail.subject, mail.html, mail.text))
    # Personalisation fields become markers only now: stray marks typed by an editor are gone.
    known = personal.language_values(mail.language)
    subject = swaps.mark(subject, known, marker, escape=False)
    html = swaps.mark(html, known, marker, escape=True)
    text = swaps.mark(text, known, marker, escape=False)
    for name, sentinel in sentinels.items():
        html = html.replace(sentinel, marker(name))
        text = text.replace(sentinel, marker(name))
        if sentinel in subject:
            raise ValueError("a subject template must not contain recipient fields")
    links = links or LinkTable(site.base_url)
    html = rewrite_html_links(html, links)
    text = rewrite_text_links(text, links)
    digest = hashlib.sha256(
        json.dumps([subject, html, text, links.urls], ensure_ascii=False).encode()
    ).hexdigest()
    return FrozenContent(subject=subject, html=html, text=text, links=list(links.urls), hash=digest)


def shown(frozen: str, values: Mapping[str, str] | None = None) -> str:
    """Frozen text (a subject) for a person to read: each personalisation field as an editor
    writes it (`{{ first_name | default("friend") }}`), or, given a reader's values
    (personal.reader_values), as that reader got it."""

    def field(match: re.Match[str]) -> str:
        name, fallback = personal.split_slot(match.group(1))
        if values is not None:
            return values.get(name) or fallback
        return f'{{{{ {name} | default("{fallback}") }}}}' if fallback else f"{{{{ {name} }}}}"

    return MARKER_RE.sub(field, frozen or "")


def split_markers(frozen: str) -> list[str]:
    """Frozen content as alternating literal text and slots: [text, slot, text, ...]; a slot is
    a field's name, a personalisation field's with its fallback (see personal.split_slot)."""
    parts = MARKER_RE.split(frozen)
    for slot in parts[1::2]:
        name = personal.split_slot(slot)[0]
        if name not in FIELDS:
            raise ValueError(f"unknown marker {name!r} in frozen content")
    return parts
