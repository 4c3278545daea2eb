"""The page's language: ?lang=, then the reader's token, then Accept-Language, then the default;
in the admin, the logged-in editor's choice (the login page: Accept-Language among the admin's).

Flask-Babel translates the templates; the chosen language is also made current for the domain
(clarion.i18n), whose messages (form errors, refusals) are translated where they are raised.
Admin pages read the admin catalog, which falls back on the readers' for what both share.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, current_app, g, request
from flask_babel import Babel, Domain, get_locale, refresh
from flask_login import current_user

from clarion import i18n

babel = Babel()
ADMIN = "admin"
# Written for machines, in English.
UNTRANSLATED = {"api"}


class _AdminDomain(Domain):
    """The admin catalog of the page's language, falling back on the readers' catalog."""

    def get_translations(self):
        return i18n.translations(page_language(), i18n.ADMIN_DOMAIN)


_admin_domain = _AdminDomain(domain=i18n.ADMIN_DOMAIN)


def editor_language() -> str:
    """The admin's language for this request: the editor's choice, else (logged out) the best
    of Accept-Language among the languages the admin speaks, else the instance default's."""
    if current_user.is_authenticated:
        return i18n.admin_language(current_user.editor.language)
    return i18n.admin_language(None, request.headers.get("Accept-Language"))


def select_language() -> str:
    """The language of this request's page, among the enabled ones (unknown ones ignored)."""
    if request.blueprint == ADMIN:
        return editor_language()
    if UNTRANSLATED.intersection(request.blueprints):  # /api/v1 is "api.v1", within "api"
        return i18n.resolve(i18n.SOURCE_LANGUAGE)
    asked = request.args.get("lang")
    return i18n.negotiate([asked, g.get("reader_language")], request.headers.get("Accept-Language"))


def use_reader_language(code: str | None) -> None:
    """A page reached by a reader's token speaks their language, unless ?lang= says otherwise."""
    g.reader_language = code
    refresh()
    _make_current()


def page_language() -> str:
    """The language the page is being rendered in."""
    return str(get_locale() or i18n.default_language())


def _make_current() -> None:
    if request.blueprint == ADMIN and "i18n_domain_token" not in g:
        _admin_domain.as_default()
        g.i18n_domain_token = i18n.set_domain(i18n.ADMIN_DOMAIN)
    token = i18n.set_current(page_language())
    # The first token restores what was there before the request; later changes just replace.
    g.setdefault("i18n_token", token)


def use_editor_language() -> None:
    """The editor just chose a language (or logged in): this page already speaks it."""
    refresh()
    i18n.set_current(page_language())


def _reset_current(_exc: BaseException | None) -> None:
    for key in ("i18n_token", "i18n_domain_token"):
        token = g.pop(key, None)
        if token is not None:
            i18n.reset_current(token)


def switcher_links() -> list[tuple[str, str, str, bool]]:
    """(code, label, URL of this page in that language, is current) for the switcher."""
    current = page_language()
    args = {k: v for k, v in request.args.items() if k != "lang"}
    links = []
    for code, label in current_app.config["CLARION"].languages:
        query = urlencode({**args, "lang": code})
        links.append((code, label, f"{request.path}?{query}", code == current))
    return links


def init_app(app: Flask) -> None:
    """Translations for templates and the domain, and the switcher's helpers."""
    i18n.compile_catalogs()  # a fresh clone has only the .po files
    babel.init_app(
        app,
        locale_selector=select_language,
        default_translation_directories=str(i18n.TRANSLATIONS),
    )
    app.before_request(_make_current)
    app.teardown_request(_reset_current)
    app.jinja_env.globals.update(
        page_language=page_language,
        language_links=switcher_links,
        number=lambda n: i18n.format_number(n, page_language()),
        day=lambda moment: i18n.format_day(moment, page_language()),
        moment=lambda when: i18n.format_moment(when, page_language()),
    )
