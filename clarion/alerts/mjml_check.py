"""A structural check of MJML saying what is wrong and on which line (mjml-python rarely does)."""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD = {"mj-title", "mj-preview", "mj-style", "mj-attributes", "mj-breakpoint",
        "mj-html-attributes", "mj-font"}  # fmt: skip
CONTENT = {"mj-text", "mj-button", "mj-image", "mj-divider", "mj-spacer", "mj-table",
           "mj-social", "mj-navbar", "mj-accordion", "mj-carousel"}  # fmt: skip
# Where each element may stand; elements not named here may stand anywhere they are known.
PARENTS: dict[str, set[str]] = {
    "mj-head": {"mjml"},
    "mj-body": {"mjml"},
    "mj-wrapper": {"mj-body"},
    "mj-section": {"mj-body", "mj-wrapper"},
    "mj-hero": {"mj-body", "mj-wrapper"},
    "mj-group": {"mj-section"},
    "mj-column": {"mj-section", "mj-group"},
    **{name: {"mj-column", "mj-hero"} for name in CONTENT},
    **{name: {"mj-head"} for name in HEAD},
    "mj-social-element": {"mj-social"},
    "mj-navbar-link": {"mj-navbar"},
    "mj-carousel-image": {"mj-carousel"},
    "mj-accordion-element": {"mj-accordion"},
    "mj-accordion-title": {"mj-accordion-element"},
    "mj-accordion-text": {"mj-accordion-element"},
}
OTHER = {"mjml", "mj-raw", "mj-all", "mj-class", "mj-selector", "mj-html-attribute"}
KNOWN = set(PARENTS) | OTHER
# Their content is HTML or text, not MJML: only their closing tag is looked for.
ENDING = {"mj-text", "mj-button", "mj-table", "mj-raw", "mj-style", "mj-title", "mj-preview",
          "mj-navbar-link", "mj-accordion-title", "mj-accordion-text", "mj-social-element",
          "mj-html-attribute"}  # fmt: skip
FORBIDDEN = {
    "mj-include": "<mj-include> is not available: put everything in this one layout.",
    "mj-font": "<mj-font> loads web fonts from another server; use font-family without it.",
}
_TAG = re.compile(r"<(/?)(mjml|mj-[a-z-]+)\b[^>]*?(/?)>", re.I)


@dataclass(frozen=True)
class Problem:
    """What is wrong with the MJML, and the line it is on."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _line(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def check(source: str, *, strict: bool = False) -> Problem | None:
    """The first structural problem in `source`, or None. `strict` forbids include and fonts."""
    stack: list[tuple[str, int]] = []
    position = 0
    seen_root = False
    while match := _TAG.search(source, position):
        closing, name, selfclosing = match.group(1), match.group(2).lower(), match.group(3)
        line = _line(source, match.start())
        position = match.end()
        if strict and name in FORBIDDEN:
            return Problem(line, FORBIDDEN[name])
        if name not in KNOWN and name != "mj-include":
            return Problem(line, f"unknown element <{name}>.")
        if closing:
            if not stack:
                return Problem(line, f"</{name}> closes nothing.")
            opened, opened_line = stack.pop()
            if opened != name:
                return Problem(line, f"</{name}> closes <{opened}> opened on line {opened_line}.")
            continue
        problem = _placement(name, stack, line, seen_root)
        if problem:
            return problem
        seen_root = True
        if selfclosing:
            continue
        if name in ENDING:
            end = re.compile(rf"</{name}\s*>", re.I).search(source, position)
            if end is None:
                return Problem(line, f"<{name}> is never closed.")
            position = end.end()
            continue
        stack.append((name, line))
    if stack:
        name, line = stack[-1]
        return Problem(line, f"<{name}> is never closed.")
    if not seen_root:
        return Problem(1, "there is no <mjml> element: a layout starts with <mjml><mj-body>.")
    return None


def _placement(
    name: str, stack: list[tuple[str, int]], line: int, seen_root: bool
) -> Problem | None:
    if not stack:
        if seen_root:
            return Problem(line, f"<{name}> stands after the closing </mjml>.")
        if name != "mjml":
            return Problem(line, f"the layout must start with <mjml>, not <{name}>.")
        return None
    parent = stack[-1][0]
    if parent == "mj-attributes" or name in {"mj-raw", "mj-include"}:
        return None
    allowed = PARENTS.get(name)
    if allowed is not None and parent not in allowed:
        where = " or ".join(f"<{p}>" for p in sorted(allowed))
        return Problem(line, f"<{name}> must be inside {where}, not inside <{parent}>.")
    return None
