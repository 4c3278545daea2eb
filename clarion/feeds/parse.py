"""Reading an RSS or Atom document with feedparser: each entry's id, title, link, plain-text
summary and image address."""

from __future__ import annotations

import hashlib
import json
from calendar import timegm
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser

from clarion.errors import FeedInvalid
from clarion.i18n import admin_gettext

SUMMARY_LIMIT = 2000  # the new-post alert's excerpt field
TITLE_LIMIT = 300  # the alert's subject
ID_LIMIT = 1000  # FeedEntry.entry_id


@dataclass(frozen=True)
class Entry:
    """One post as the feed describes it."""

    entry_id: str
    title: str
    link: str
    summary: str
    image_url: str
    published: float | None  # seconds since the epoch, for putting the newest first

    @property
    def content_hash(self) -> str:
        """Changes when the post's title, link, summary or image changes."""
        data = json.dumps([self.title, self.link, self.summary, self.image_url])
        return hashlib.sha256(data.encode()).hexdigest()


class _TextExtractor(HTMLParser):
    """Text of an HTML fragment: block elements become line breaks, script and style vanish."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "blockquote", "tr", "table", "pre", "hr"}
        | {f"h{n}" for n in range(1, 7)}
    )
    HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.images: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "img":
            src = dict(attrs).get("src")
            if src:
                self.images.append(src)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, list[str]]:
    """Plain text of an HTML fragment (paragraphs separated by a blank line), and its images."""
    extractor = _TextExtractor()
    extractor.feed(html or "")
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).split("\n"))
    return "\n\n".join(line for line in lines if line), extractor.images


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "…"


def _web_url(value: Any) -> str:
    url = str(value or "").strip()
    parts = urlsplit(url)
    return url if parts.scheme in {"http", "https"} and parts.netloc else ""


def _image(entry: Any, html_images: list[str]) -> str:
    """The post's picture: media:content or media:thumbnail, an image enclosure, else the first
    image in its HTML."""
    candidates = [m.get("url") for m in entry.get("media_content", []) if m.get("medium", "image")]
    candidates += [m.get("url") for m in entry.get("media_thumbnail", [])]
    candidates += [
        link.get("href")
        for link in entry.get("links", [])
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/")
    ]
    candidates += html_images
    return next((url for url in map(_web_url, candidates) if url), "")


def _summary_html(entry: Any) -> str:
    if entry.get("summary"):
        return str(entry["summary"])
    content = entry.get("content") or []
    return str(content[0].get("value", "")) if content else ""


def _entry_id(entry: Any, link: str, title: str, summary: str) -> str:
    raw = str(entry.get("id") or link or "").strip()
    if not raw:
        raw = "sha256:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    elif len(raw) > ID_LIMIT:
        raw = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    return raw


def _entry(raw: Any) -> Entry:
    summary, images = html_to_text(_summary_html(raw))
    title, _ = html_to_text(str(raw.get("title", "")))
    link = _web_url(raw.get("link"))
    when = raw.get("published_parsed") or raw.get("updated_parsed")
    return Entry(
        entry_id=_entry_id(raw, link, title, summary),
        title=shorten(" ".join(title.split()), TITLE_LIMIT),
        link=link,
        summary=shorten(summary, SUMMARY_LIMIT),
        image_url=_image(raw, images),
        published=float(timegm(when)) if when else None,
    )


def parse(body: bytes, url: str, content_type: str = "") -> list[Entry]:
    """The entries of a feed document, in its order; FeedInvalid when it is not a usable feed.

    A document that is not well-formed XML is refused as a whole, although feedparser could
    guess at parts of it: a guessed entry could carry a wrong id and come back as "new".
    """
    parsed = feedparser.parse(
        body,
        response_headers={
            "content-location": url,
            "content-type": content_type or "application/xml",
        },
    )
    problem = parsed.get("bozo_exception")
    benign = isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe)
    if not parsed.get("version"):
        if problem and not benign:
            raise FeedInvalid(
                admin_gettext(
                    "This address does not serve an RSS or Atom feed (%(error)s).", error=problem
                )
            )
        raise FeedInvalid(admin_gettext("This address does not serve an RSS or Atom feed."))
    if parsed.get("bozo") and not benign:
        raise FeedInvalid(
            admin_gettext(
                "The feed is not well-formed XML (%(error)s); nothing was taken from it.",
                error=problem,
            )
        )
    entries: list[Entry] = []
    seen: set[str] = set()
    for raw in parsed.entries:
        entry = _entry(raw)
        if entry.entry_id not in seen:  # a feed listing a post twice still makes one alert
            seen.add(entry.entry_id)
            entries.append(entry)
    return entries
