"""Editor text to safe HTML: Markdown rendered, then sanitised with nh3 (scripts never survive)."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable
from html.parser import HTMLParser

import markdown
import nh3

from clarion.alerts.plaintext import html_to_text

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h1",
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
# The text column of the standard layouts: 600 px less the section's (2 x 24) and the text
# block's (2 x 25) padding. An image is never given a wider `width` attribute: Outlook takes
# that attribute literally and ignores max-width.
COLUMN_WIDTH = 502
IMAGE_STYLE = "display:block;max-width:100%;height:auto;border:0"
_IMG_RE = re.compile(r"<img\b([^>]*?)\s*/?>", re.I)
_ATTR_RE = re.compile(r'([a-z-]+)="([^"]*)"', re.I)

# A button: `[text](address){button}` alone in its paragraph, as Markdown and nh3 leave it.
BUTTON_MARK = "{button}"
_BUTTON_RE = re.compile(r'<p><a href="([^"]+)"[^>]*>(.*?)</a>\{button\}</p>', re.S)
_BUTTON_MARK_RE = re.compile(r"(?<=</a>)\{button\}")
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_BUTTON = "#b3261e"

# The pixel width of an image at a URL, when it is one Clarion stores; None when unknown.
WidthOf = Callable[[str], "int | None"]


def _only_first_party_images(base_url: str):
    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        # An image from elsewhere would be fetched when the mail is opened: a third-party
        # request that tells that server who read what. Only our own media may appear.
        if tag == "img" and attribute == "src" and not value.startswith(base_url + "/"):
            return None
        return value

    return attribute_filter


def _render(source: str) -> str:
    return markdown.markdown(
        source or "", extensions=["sane_lists", "tables"], output_format="html"
    )


def _sanitise(html: str, attribute_filter=None) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=attribute_filter,
    )


def _fitted_image(attrs: dict[str, str], width_of: WidthOf | None) -> str:
    """An <img> that fits the column: a width attribute for Outlook, max-width for the rest."""
    if "src" not in attrs:
        # Never an image without a source: the reader sees its description instead.
        return htmllib.escape(attrs.get("alt", ""), quote=False)
    natural = width_of(attrs["src"]) if width_of else None
    asked = int(attrs["width"]) if attrs.get("width", "").isdigit() else None
    width = min(w for w in (natural, asked, COLUMN_WIDTH) if w)
    kept = {k: attrs[k] for k in ("src", "alt", "title") if k in attrs}
    kept.setdefault("alt", "")
    kept |= {"width": str(width), "style": IMAGE_STYLE}
    return "<img " + " ".join(f'{k}="{v}"' for k, v in kept.items()) + " />"


def fit_images(html: str, width_of: WidthOf | None = None) -> str:
    """Every <img> of sanitised HTML given a width within the column, or its alt text if it
    has no source left."""

    def fit(match: re.Match[str]) -> str:
        return _fitted_image(dict(_ATTR_RE.findall(match.group(1))), width_of)

    return _IMG_RE.sub(fit, html)


def _button(match: re.Match[str], accent: str) -> str:
    """A link alone in its paragraph, marked {button}: a table cell any mail client shows as
    a button (no image, no VML), in the campaign's accent colour with white text."""
    colour = accent if _COLOUR_RE.match(accent) else DEFAULT_BUTTON
    link = "display:inline-block;padding:12px 24px;font-weight:bold;color:#ffffff;"
    link += f"text-decoration:none;border-radius:4px;background:{colour}"
    return (
        '<table role="presentation" border="0" cellpadding="0" cellspacing="0" '
        'style="border-collapse:separate;margin:12px 0"><tr>'
        f'<td align="center" bgcolor="{colour}" style="border-radius:4px;background:{colour}">'
        f'<a href="{match.group(1)}" style="{link}">{match.group(2)}</a></td></tr></table>'
    )


def markdown_to_html(
    source: str, base_url: str, width_of: WidthOf | None = None, accent: str = DEFAULT_BUTTON
) -> str:
    """Markdown to sanitised HTML: no script, no event handler, no javascript: or data: URL;
    images only from Clarion's own address, each fitted to the column (`width_of` gives the
    stored copy's pixel width); a link alone in its paragraph followed by `{button}`
    (`[Sign now](https://…){button}`) becomes a button in `accent`."""
    clean = _sanitise(_render(source), _only_first_party_images(base_url))
    return _BUTTON_RE.sub(lambda m: _button(m, accent), fit_images(clean, width_of))


class _ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def image_sources(source: str) -> list[str]:
    """The address of every image the Markdown shows, as written, in order ("" for none)."""
    parser = _ImageSources()
    parser.feed(_render(source))
    parser.close()
    return parser.sources


def markdown_to_text(source: str) -> str:
    """Markdown as plain text for the text part: no markup, links as "text (address)",
    tables as lines, images as their alt text; a button as its link."""
    return html_to_text(_sanitise(_BUTTON_MARK_RE.sub("", _render(source))))
