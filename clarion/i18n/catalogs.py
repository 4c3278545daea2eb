"""The message catalogs as translators keep them: extract, update, and check for problems.

Two domains: `messages` (readers' pages and mails, and what the admin shares with them) and
`admin` (admin templates and views, and what the domain marks `admin_gettext`/`NA_`): a message
in both stays in `messages`. `clarion i18n update` runs `update_catalogs`; `clarion i18n check`
and the catalog test run `extract` and `problems`, for each domain.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from clarion.config import PROJECT_ROOT
from clarion.i18n import ADMIN_DOMAIN, DOMAIN, DOMAINS, TRANSLATIONS, catalog_languages

JINJA = {
    "extensions": "jinja2.ext.i18n",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "N_": None}
ADMIN_KEYWORDS = {"admin_gettext": None, "NA_": None}
# What is extracted, per domain: (method map, keywords) passes over the repository. Readers':
# the domain's and the web layer's Python, the public pages and every mail. The admin's: its
# templates and views whole, and in the domain only what is marked for editors.
ADMIN_SOURCES = [
    ("templates/web/admin/**.html", "jinja2"),
    ("webapp/admin/**.py", "python"),
]
PASSES = {
    DOMAIN: [
        (
            [
                ("clarion/migrations/**", "ignore"),
                *[(pattern, "ignore") for pattern, _method in ADMIN_SOURCES],
                ("clarion/**.py", "python"),
                ("webapp/**.py", "python"),
                ("templates/web/**.html", "jinja2"),
                ("templates/email/**.mjml", "jinja2"),
                ("templates/email/**.txt", "jinja2"),
            ],
            KEYWORDS,
        )
    ],
    ADMIN_DOMAIN: [
        (ADMIN_SOURCES, {**KEYWORDS, **ADMIN_KEYWORDS}),
        (
            [("clarion/migrations/**", "ignore"), ("clarion/**.py", "python")],
            ADMIN_KEYWORDS,
        ),
    ],
}
PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]")


def _options(method_map: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    return {pattern: JINJA for pattern, method in method_map if method == "jinja2"}


def extract(root: Path = PROJECT_ROOT, domain: str = DOMAIN) -> Catalog:
    """Every message of `domain` marked for translation in the sources, as a template catalog
    (the admin's without those the readers' catalog already holds)."""
    catalog = Catalog(project="Clarion", domain=domain, charset="utf-8")
    for method_map, keywords in PASSES[domain]:
        for filename, lineno, message, comments, context in extract_from_dir(
            str(root),
            method_map,
            _options(method_map),
            keywords,
            comment_tags=("Translators:",),
            strip_comment_tags=True,
        ):
            catalog.add(
                message, None, [(filename, lineno)], auto_comments=comments, context=context
            )
    if domain != DOMAIN:
        for message in extract(root):
            if message.id and catalog.get(message.id) is not None:
                catalog.delete(message.id)
    return catalog


def po_path(lang: str, domain: str = DOMAIN) -> Path:
    """Where the catalog of `lang` in `domain` lives."""
    return TRANSLATIONS / lang / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(lang: str, domain: str = DOMAIN) -> Catalog:
    """The catalog of `lang` in `domain` as it is in the repository."""
    with po_path(lang, domain).open("rb") as source:
        return read_po(source, locale=lang, domain=domain)


_STAMP_RE = re.compile(rb'^"POT-Creation-Date: .*$', re.M)


def write_catalog(lang: str, catalog: Catalog, domain: str = DOMAIN) -> bool:
    """Write the catalog of `lang` back, sorted, without line numbers (small diffs); a catalog
    that changed only in its time stamp is left alone. Returns whether it was written."""
    path = po_path(lang, domain)
    out = io.BytesIO()
    write_po(out, catalog, width=100, sort_output=True, include_lineno=False)
    new = out.getvalue()
    if path.exists() and _STAMP_RE.sub(b"", path.read_bytes()) == _STAMP_RE.sub(b"", new):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(new)
    return True


def update_catalogs(new_languages: tuple[str, ...] = (), domain: str = DOMAIN) -> dict[str, int]:
    """Bring every catalog of `domain` (and new ones) in line with the sources; returns
    untranslated counts.

    New messages arrive empty, changed ones fuzzy (to be checked), vanished ones are dropped.
    """
    template = extract(domain=domain)
    counts = {}
    for lang in sorted({*catalog_languages(domain), *new_languages}):
        if po_path(lang, domain).exists():
            catalog = read_catalog(lang, domain)
        else:
            catalog = Catalog(locale=lang, domain=domain, project="Clarion", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=False)
        catalog.obsolete.clear()
        write_catalog(lang, catalog, domain)
        counts[lang] = sum(1 for m in catalog if m.id and not _translated(m))
    return counts


def all_problems() -> list[str]:
    """What keeps any catalog of any domain from shipping (what CI checks)."""
    found = []
    for domain in DOMAINS:
        template = extract(domain=domain)
        for lang in catalog_languages(domain):
            found += problems(lang, template, domain=domain)
    return found


def _translated(message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return all(strings) and not message.fuzzy


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER_RE.findall(text))


def problems(
    lang: str,
    template: Catalog | None = None,
    catalog: Catalog | None = None,
    domain: str = DOMAIN,
) -> list[str]:
    """What keeps `lang`'s catalog (as in the repository, unless given) from shipping:
    messages missing, untranslated or fuzzy, placeholders lost or renamed, plural forms."""
    template = template or extract(domain=domain)
    catalog = catalog or read_catalog(lang, domain)
    if domain != DOMAIN:
        lang = f"{lang} ({domain})"
    found = []
    for message in template:
        if message.id and catalog.get(message.id) is None:
            found.append(f"{lang}: missing {_first(message.id)!r}")
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            found.append(f"{lang}: fuzzy {_first(message.id)!r}")
            continue
        if not _translated(message):
            found.append(f"{lang}: untranslated {_first(message.id)!r}")
            continue
        found += _placeholder_problems(lang, message, catalog.num_plurals)
    return found


def _first(message_id) -> str:
    return message_id[0] if isinstance(message_id, (list, tuple)) else message_id


def _placeholder_problems(lang: str, message, num_plurals: int) -> list[str]:
    plural = isinstance(message.id, (list, tuple))
    if plural:
        wanted = _placeholders(message.id[0]) | _placeholders(message.id[1])
        strings = list(message.string)
        if len(strings) != num_plurals:
            return [f"{lang}: {len(strings)} plural forms, not {num_plurals}: {message.id[0]!r}"]
    else:
        wanted = _placeholders(message.id)
        strings = [message.string]
    found = []
    for text in strings:
        got = _placeholders(text)
        if plural:
            # A form may leave the number out ("one" may read "a signature"), nothing else.
            got.discard("num")
            wanted.discard("num")
        if got != wanted:
            found.append(f"{lang}: placeholders {sorted(got)}, not {sorted(wanted)}, in {text!r}")
    return found
