"""Every URL a mail's HTML would fetch when opened, found by parsing it rather than by pattern.

A reader's mail client that loads anything from another server tells that server who opened
the mail, when and from where. Custom layouts are written by editors, so the check must see
what the client sees: entities decoded, every `srcset` candidate, `<link href>`, `<object
data>`, SVG `<image href>`, inline and `<style>` CSS, `<meta refresh>` and `<base href>`.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

# Attributes whose value is a URL the client fetches (or that decides where others go).
_LOADING = {
    "src",
    "data",
    "poster",
    "background",
    "lowsrc",
    "dynsrc",
    "codebase",
    "archive",
    "longdesc",
    "profile",
    "manifest",
    "icon",
}
_SRCSET = {"srcset", "imagesrcset"}
# `href` loads on these elements only; on <a> and <area> it is a link the reader may follow.
_HREF_LOADS = {"link", "base", "image", "use", "feimage", "script", "tref", "pattern"}
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_URL = re.compile(
    r"""url\(\s*(["']?)(.*?)\1\s*\)|@import\s+(["'])(.*?)\3|image-set\(\s*(["'])(.*?)\5""",
    re.I | re.S,
)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\";]+)", re.I)
# Schemes that never leave the message: inline data and attached parts.
_LOCAL_SCHEMES = {"", "data", "cid", "mid"}


def css_urls(css: str) -> list[str]:
    """The URLs a piece of CSS would load (url(), @import, image-set), escapes decoded."""
    css = _CSS_COMMENT.sub("", css)
    css = _CSS_ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else m[2], css)
    return [next(g for g in (m[2], m[4], m[6]) if g is not None) for m in _CSS_URL.finditer(css)]


def srcset_urls(value: str) -> list[str]:
    """Every candidate URL of a srcset ("a.png 1x, b.png 2x"), not just the first."""
    return [part.split()[0] for part in value.split(",") if part.split()]


class _Collector(HTMLParser):
    """Collects URL-bearing values; HTMLParser has already decoded entities in attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        values = {name.lower(): value or "" for name, value in attrs}
        for name, value in values.items():
            bare = name.rpartition(":")[2]  # xlink:href is href
            if bare in _LOADING:
                self.urls.append(value)
            elif bare in _SRCSET:
                self.urls.extend(srcset_urls(value))
            elif bare == "href" and tag in _HREF_LOADS:
                self.urls.append(value)
            elif name == "style":
                self.urls.extend(css_urls(value))
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.urls.extend(_REFRESH_URL.findall(values.get("content", "")))
        if tag == "style":
            self._in_style = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() == "style":
            self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag.lower() == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(css_urls(data))


def loaded_urls(html: str) -> list[str]:
    """Every URL the HTML would load on opening, as the mail client would read it."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.urls


def is_remote(url: str, own: str) -> bool:
    """True when a URL leaves the message for a server other than Clarion's own (`own`)."""
    # Clients drop control characters and whitespace and read a backslash as a slash.
    cleaned = "".join(ch for ch in url if ch > " " and ch != "\x7f").replace("\\", "/")
    if cleaned.startswith(own):
        return False
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return True  # unreadable to us: perhaps not to a mail client
    return bool(parts.netloc) or parts.scheme.lower() not in _LOCAL_SCHEMES


def remote_assets(html: str, base_url: str) -> list[str]:
    """URLs the HTML would fetch on opening (images, styles, objects) that are not our own."""
    own = base_url.rstrip("/") + "/"
    return [url.strip() for url in loaded_urls(html) if is_remote(url, own)]
