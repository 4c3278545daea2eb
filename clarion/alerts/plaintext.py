"""Sanitised HTML (from markup) as plain text that reads well in a text part.

No Markdown survives: headings are underlined, links read "text (address)", list items start
with "-" or their number, table rows become lines ("Header: cell · Header: cell"), images
become their alt text and quotes are marked "> " as in any plain-text mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLOCKS = {"p", "h1", "h2", "h3", "h4", "pre", "blockquote", "ul", "ol", "li", "table", "tr", "hr"}
_UNDERLINE = {"h1": "=", "h2": "-"}


@dataclass
class _List:
    ordered: bool
    count: int = 0


@dataclass
class _Block:
    text: str
    group: str = ""  # "list" or "table": one newline between blocks of a group, not a blank line


@dataclass
class _Table:
    headers: list[str] = field(default_factory=list)
    row: list[str] = field(default_factory=list)
    in_head: bool = False


class _Writer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self.inline: list[str] = []
        self.links: list[tuple[str, int]] = []
        self.lists: list[_List] = []
        self.tables: list[_Table] = []
        self.quotes = 0
        self.pre = False
        self.bullet = ""  # the marker of a list item whose first line is not written yet
        self.groups = 0  # top-level lists and tables so far: each one is its own group

    # --- the text of the current block -------------------------------------------------

    def handle_data(self, data: str) -> None:
        self.inline.append(data if self.pre else _SPACES.sub(" ", data))

    def _take(self) -> str:
        text = "".join(self.inline)
        self.inline = []
        if self.pre:
            return text.strip("\n")
        lines = (" ".join(line.split()) for line in text.split("\n"))
        return "\n".join(line for line in lines if line)

    def _emit(self, text: str, group: str = "") -> None:
        if not text:
            return
        lines = text.split("\n")
        if self.pre:
            lines = ["    " + line for line in lines]
        if self.lists:
            indent = "  " * (len(self.lists) - 1)
            marker, self.bullet = self.bullet, ""
            pad = " " * len(marker) if marker else "  "
            first, rest = indent + (marker or pad), indent + pad
            lines = [(first if i == 0 else rest) + line for i, line in enumerate(lines)]
            group = f"list{self.groups}"
        prefix = "> " * self.quotes
        self.blocks.append(_Block("\n".join(prefix + line for line in lines), group))

    def _flush(self) -> None:
        self._emit(self._take())

    # --- tags ----------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in _BLOCKS and not self.tables:
            self._flush()
        if tag in {"ul", "ol"}:
            self.groups += not self.lists
            self.lists.append(_List(ordered=tag == "ol"))
        elif tag == "li" and self.lists:
            current = self.lists[-1]
            current.count += 1
            self.bullet = f"{current.count}. " if current.ordered else "- "
        elif tag == "blockquote":
            self.quotes += 1
        elif tag == "pre":
            self.pre = True
        elif tag == "hr":
            self.blocks.append(_Block("—" * 20))
        elif tag == "table":
            self.groups += 1
            self.tables.append(_Table())
        elif tag == "thead" and self.tables:
            self.tables[-1].in_head = True
        elif tag == "br":
            self.inline.append("\n")
        elif tag == "img":
            self.inline.append(values.get("alt", ""))
        elif tag == "a":
            self.links.append((values.get("href", ""), len(self.inline)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            self._end_link()
        elif tag in {"td", "th"} and self.tables:
            self.tables[-1].row.append(" ".join(self._take().split()))
        elif tag == "tr" and self.tables:
            self._end_row()
        elif tag == "thead" and self.tables:
            self.tables[-1].in_head = False
        elif tag == "table" and self.tables:
            self.tables.pop()
        elif tag in _BLOCKS and not self.tables:
            self._end_block(tag)

    def _end_block(self, tag: str) -> None:
        text = self._take()
        if tag in _UNDERLINE and text:
            text = f"{text}\n{_UNDERLINE[tag] * min(len(text), 60)}"
        self._emit(text)
        if tag in {"ul", "ol"} and self.lists:
            self.lists.pop()
        elif tag == "blockquote":
            self.quotes = max(0, self.quotes - 1)
        elif tag == "pre":
            self.pre = False

    def _end_link(self) -> None:
        href, start = self.links.pop()
        label = "".join(self.inline[start:]).strip()
        address = href[len("mailto:") :] if href.lower().startswith("mailto:") else href
        if not address or address == label:
            return
        self.inline.append(f" ({address})" if label else address)

    def _end_row(self) -> None:
        table = self.tables[-1]
        cells, table.row = table.row, []
        if table.in_head:
            table.headers = cells
            return
        if len(table.headers) == len(cells):
            pairs = zip(table.headers, cells, strict=True)
            cells = [f"{h}: {c}" if h and c else c for h, c in pairs]
        saved, self.tables = self.tables, []
        self._emit(" · ".join(c for c in cells if c), group=f"table{self.groups}")
        self.tables = saved


def html_to_text(html: str) -> str:
    """Plain text of sanitised HTML, blocks separated by blank lines."""
    writer = _Writer()
    writer.feed(html)
    writer.close()
    writer._flush()
    out: list[str] = []
    before = ""
    for block in writer.blocks:
        if out:
            out.append("\n" if block.group and block.group == before else "\n\n")
        out.append(block.text)
        before = block.group
    return "".join(out).strip()
