"""Editor text to safe HTML: Markdown rendered, then sanitised with nh3 (scripts never survive)."""

from __future__ import annotations

import markdown
import nh3

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"align"},
    "th": {"align"},
}
LINK_SCHEMES = {"http", "https", "mailto"}


def _only_first_party_images(base_url: str):
    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        # An image from elsewhere would be fetched when the mail is opened: a third-party
        # request that tells that server who read what. Only our own media may appear.
        if tag == "img" and attribute == "src" and not value.startswith(base_url + "/"):
            return None
        return value

    return attribute_filter


def markdown_to_html(source: str, base_url: str) -> str:
    """Markdown to sanitised HTML: no script, no event handler, no javascript: or data: URL."""
    html = markdown.markdown(
        source or "", extensions=["sane_lists", "tables"], output_format="html"
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=_only_first_party_images(base_url),
    )


def markdown_to_text(source: str) -> str:
    """A plain-text rendering of Markdown: the source itself, which is readable by design."""
    return (source or "").strip()
