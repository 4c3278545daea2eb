"""The campaign's identity in every page: `identity` in templates, its accent as a stylesheet."""

from __future__ import annotations

import logging

from flask import Flask, g
from sqlalchemy.exc import SQLAlchemyError

from clarion.alerts import identity
from webapp.extensions import db

log = logging.getLogger(__name__)


def current() -> identity.Identity:
    """The identity for this request, read once."""
    if "identity" not in g:
        try:
            g.identity = identity.load(db())
        except SQLAlchemyError:
            # An error page while the database is down still needs a header.
            log.warning("the campaign's identity could not be read; showing the defaults")
            db().rollback()
            g.identity = identity.defaults()
    return g.identity


def accent_css(accent: str) -> str:
    """Pico's primary colour set to the accent in the light scheme (the dark keeps Pico's,
    which is made for a dark background)."""
    names = ("", "-background", "-border", "-hover", "-hover-background", "-hover-border")
    values = "".join(f"--pico-primary{n}:{accent};" for n in names)
    values += f"--pico-primary-underline:{accent}80;--pico-primary-focus:{accent}40;"
    # Pico's own selector, so that this later sheet wins at the same specificity.
    light = ":root:not([data-theme=dark]), [data-theme=light]"
    return f"@media not all and (prefers-color-scheme: dark) {{ {light} {{ {values} }} }}\n"


def init_app(app: Flask) -> None:
    """Templates see `identity` (lazily: pages that do not show it do not read it)."""

    @app.context_processor
    def _identity() -> dict[str, object]:
        return {"identity": _Lazy()}


class _Lazy:
    """Reads the identity on the first attribute a template asks for."""

    def __getattr__(self, name: str) -> object:
        return getattr(current(), name)
