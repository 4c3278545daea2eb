"""Languages: gettext catalogs (compiled on demand), the current language, Babel formats.

Owns: two gettext domains, `messages` (readers' pages and mails, and anything readers and editors
share) in `translations/<lang>/LC_MESSAGES/messages.po`, and `admin` (what only editors read)
in `admin.po`, which ships fewer languages (English is the source language and has neither);
compiling each `.mo` next to its `.po` whenever it is missing or older (so a fresh clone works
with no manual step), the language and domain of the work in hand (context variables: the web
layer sets them per request, mail code with `language(code)`), and numbers, dates and country
names in the reader's words; `catalogs` extracts, updates and checks the catalogs.
May use: config.

Public (all that other packages import from it):
    __init__: ADMIN_DOMAIN, DOMAIN, N_, NA_, SOURCE_LANGUAGE, TRANSLATIONS, admin_gettext,
        admin_language, admin_languages, admin_stored, catalog_languages, compile_catalogs,
        country_names, current, default_language, enabled, format_day, format_moment,
        format_number, gettext, language, language_name, negotiate, ngettext, reset_current,
        resolve, set_current, set_domain, translations
    catalogs: all_problems, extract, po_path, problems, update_catalogs
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pycountry
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from clarion.config import PROJECT_ROOT, get_settings

TRANSLATIONS = PROJECT_ROOT / "translations"
DOMAIN = "messages"
# What only editors read: its own catalogs, since the admin ships fewer languages than readers'
# pages; it falls back on `messages` for what both share.
ADMIN_DOMAIN = "admin"
DOMAINS = (DOMAIN, ADMIN_DOMAIN)
SOURCE_LANGUAGE = "en"

_current: ContextVar[str | None] = ContextVar("clarion_language", default=None)
_domain: ContextVar[str] = ContextVar("clarion_domain", default=DOMAIN)


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def NA_(message: str) -> str:
    """Mark an editor-facing string (admin catalog); it is translated where it is shown."""
    return message


def enabled() -> tuple[str, ...]:
    """The codes of CLARION_LANGUAGES, the instance default first."""
    return tuple(code for code, _label in get_settings().languages)


def default_language() -> str:
    """The instance default: the first of CLARION_LANGUAGES."""
    return enabled()[0]


def resolve(code: str | None) -> str:
    """`code` if it is enabled, else the default (a language removed later is no error)."""
    return code if code in enabled() else default_language()


def negotiate(preferred: Iterable[str | None], accept_language: str | None = None) -> str:
    """The first enabled code in `preferred`, else the best Accept-Language match, else default."""
    offered = enabled()
    for code in preferred:
        if code in offered:
            return code
    for code in _accepted(accept_language or ""):
        if code in offered:
            return code
        base = code.split("-", 1)[0]
        if base in offered:
            return base
    return offered[0]


def _accepted(header: str) -> list[str]:
    """Accept-Language tags, best first; malformed parts are skipped."""
    ranked = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            ranked.append((-quality, position, tag.lower().replace("_", "-")))
    return [tag for _q, _p, tag in sorted(ranked)]


def catalog_languages(domain: str = DOMAIN) -> tuple[str, ...]:
    """Languages that have a catalog of `domain` in the repository."""
    if not TRANSLATIONS.is_dir():
        return ()
    return tuple(
        sorted(p.parent.parent.name for p in TRANSLATIONS.glob(f"*/LC_MESSAGES/{domain}.po"))
    )


def admin_languages() -> tuple[str, ...]:
    """The languages the admin speaks: English and each language with an admin catalog."""
    return (SOURCE_LANGUAGE, *catalog_languages(ADMIN_DOMAIN))


def admin_language(chosen: str | None, accept_language: str | None = None) -> str:
    """An editor's language: their choice, else the best of Accept-Language the admin speaks
    (the login page), else the instance default if the admin speaks it, else English (a choice
    whose catalog was removed falls back the same way)."""
    offered = admin_languages()
    wanted = [chosen]
    for code in _accepted(accept_language or ""):
        wanted += [code, code.split("-", 1)[0]]
    for code in (*wanted, enabled()[0]):
        if code in offered:
            return code
    return SOURCE_LANGUAGE


@lru_cache(maxsize=16)
def language_name(code: str) -> str:
    """A language's name in itself, as a choice is offered: Беларуская, Русский, English."""
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError):
        return code
    return name[:1].upper() + name[1:]


def compile_catalogs(force: bool = False) -> list[Path]:
    """Compile each `.po` whose `.mo` is missing or older; returns the files written."""
    written = []
    pairs = [(lang, domain) for domain in DOMAINS for lang in catalog_languages(domain)]
    for lang, domain in pairs:
        po = TRANSLATIONS / lang / "LC_MESSAGES" / f"{domain}.po"
        mo = po.with_suffix(".mo")
        if not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=lang)
        # Written aside and renamed: processes starting together never read half a file.
        fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog)
        os.replace(tmp, mo)
        written.append(mo)
    return written


@lru_cache(maxsize=32)
def translations(lang: str, domain: str = DOMAIN) -> NullTranslations:
    """The compiled catalog of `lang` (the source language and unknown ones: identity); the
    admin's falls back on the readers' for the messages both share."""
    if lang == SOURCE_LANGUAGE or lang not in catalog_languages(domain):
        return translations(lang) if domain != DOMAIN else NullTranslations()
    compile_catalogs()
    catalog = Translations.load(str(TRANSLATIONS), [lang], domain)
    if domain != DOMAIN:
        catalog.add_fallback(translations(lang))
    return catalog


def current() -> str:
    """The language of the work in hand (the default when nothing chose one); in the admin,
    the editor's language."""
    if _domain.get() == ADMIN_DOMAIN:
        return admin_language(_current.get())
    return resolve(_current.get())


def set_domain(domain: str) -> object:
    """Make `domain` the catalog of the work in hand (the admin sets its own per request);
    returns a token for `reset_current`."""
    return _domain.set(domain)


def set_current(code: str | None) -> object:
    """Make `code` the current language; returns a token for `reset_current`."""
    return _current.set(code)


def reset_current(token: object) -> None:
    """Undo a `set_current` or a `set_domain`."""
    token.var.reset(token)  # type: ignore[attr-defined]


@contextlib.contextmanager
def language(code: str | None) -> Iterator[str]:
    """Work in `code` (resolved against the enabled languages) for the block."""
    resolved = resolve(code)
    token = _current.set(resolved)
    try:
        yield resolved
    finally:
        _current.reset(token)


def gettext(message: str, lang: str | None = None, **variables: object) -> str:
    """`message` in the current (or given) language, `%(name)s` placeholders filled."""
    text = translations(lang or current(), _domain.get()).gettext(message)
    return text % variables if variables else text


def admin_gettext(message: str, **variables: object) -> str:
    """An editor-facing `message` (admin catalog) in the editor's language on admin pages;
    elsewhere (the API, the command line, tasks) in English, the same for every caller."""
    lang = admin_language(_current.get()) if _domain.get() == ADMIN_DOMAIN else SOURCE_LANGUAGE
    text = translations(lang, ADMIN_DOMAIN).gettext(message)
    return text % variables if variables else text


def admin_stored(text: str, messages: Iterable[str]) -> str:
    """Text stored in English (a status reason, a note) in the editor's words, when it is one
    of `messages` with its placeholders filled; anything else as stored."""
    for message in messages:
        found = _stored_pattern(message).fullmatch(text)
        if found is not None:
            return admin_gettext(message, **found.groupdict())
    return text


@lru_cache(maxsize=256)
def _stored_pattern(message: str) -> re.Pattern[str]:
    """`message` as a pattern that reads its `%(name)s` placeholders back."""
    parts = re.split(r"%\((\w+)\)s", message)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>.*?)" for i, part in enumerate(parts)
    )
    return re.compile(pattern, re.DOTALL)


def ngettext(
    singular: str, plural: str, n: int, lang: str | None = None, **variables: object
) -> str:
    """The plural form for `n` in the current (or given) language; `%(num)s` is n."""
    text = translations(lang or current(), _domain.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def _locale(lang: str | None) -> Locale:
    try:
        return Locale.parse(lang or current())
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LANGUAGE)


def format_number(number: int | float, lang: str | None = None) -> str:
    """A count as the reader writes it: 1,234 in English, 1 234 in Belarusian."""
    return format_decimal(number, locale=_locale(lang))


def format_moment(moment: datetime, lang: str | None = None) -> str:
    """A day and time in full, in the reader's words: Friday 5 June 2026, 18:00."""
    return format_datetime(
        moment, "EEEE d MMMM y, HH:mm", tzinfo=moment.tzinfo, locale=_locale(lang)
    )


def format_day(moment: datetime, lang: str | None = None) -> str:
    """A date in the reader's words: 5 June 2026."""
    return format_datetime(moment, "d MMMM y", tzinfo=moment.tzinfo, locale=_locale(lang))


@lru_cache(maxsize=16)
def country_names(lang: str) -> tuple[tuple[str, str], ...]:
    """ISO 3166 countries as (code, name) in `lang`, sorted as that language sorts."""
    names = _locale(lang).territories
    pairs = [
        (c.alpha_2, names.get(c.alpha_2) or getattr(c, "common_name", c.name))
        for c in pycountry.countries
    ]
    return tuple(sorted(pairs, key=lambda pair: pair[1].casefold()))
