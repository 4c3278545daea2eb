"""Readers' languages: complete catalogs, right plurals, the language chosen, Babel formats."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from clarion import i18n
from clarion.alerts import reasons
from clarion.config import reset_settings
from clarion.i18n import catalogs

SHIPPED = ("be", "pl", "ru", "uk")
ADMIN_SHIPPED = ("be", "ru")  # the admin: English, Belarusian, Russian


@pytest.fixture
def languages(monkeypatch, tmp_path):
    """Settings offering the given CLARION_LANGUAGES (the five by default)."""

    def configure(value: str | None = None) -> None:
        for key in list(os.environ):
            if key.startswith("CLARION_"):
                monkeypatch.delenv(key)
        monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path / "instance"))
        monkeypatch.setenv("CLARION_SECRET_KEY", "unit-test-secret-that-is-long-enough-0123")
        if value is not None:
            monkeypatch.setenv("CLARION_LANGUAGES", value)
        reset_settings()

    configure()
    yield configure
    reset_settings()


@pytest.fixture(scope="module")
def template():
    return catalogs.extract()


# --- The catalog check ----------------------------------------------------------------------


def test_every_shipped_catalog_is_complete_and_sound(template):
    assert i18n.catalog_languages() == SHIPPED
    assert len(template) > 150  # extraction found the pages, the mails and the domain's messages
    for lang in SHIPPED:
        assert catalogs.problems(lang, template) == []


def test_every_admin_catalog_is_complete_and_sound(template):
    admin = catalogs.extract(domain=i18n.ADMIN_DOMAIN)
    assert i18n.catalog_languages(i18n.ADMIN_DOMAIN) == ADMIN_SHIPPED
    assert len(admin) > 400  # the admin's templates, views and the domain's editor messages
    for lang in ADMIN_SHIPPED:
        assert catalogs.problems(lang, admin, domain=i18n.ADMIN_DOMAIN) == []
    assert catalogs.all_problems() == []  # what `clarion i18n check` runs in CI


def test_admin_extraction_takes_editor_text_and_leaves_shared_text_to_readers(template):
    admin = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogs.extract(domain="admin")}
    readers = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    assert "Your account" in admin  # an admin template
    assert "Draft saved." in admin  # an admin view's flash message
    assert "Sending now." in admin  # marked NA_ in the domain
    assert "%(field)s is required." in admin  # admin_gettext in the domain
    assert "Sending now." not in readers and "Your account" not in readers
    assert not admin & readers  # a message both use stays in the readers' catalog only


@pytest.mark.parametrize(
    ("msgid", "change", "problem"),
    [
        (
            "Test sent to %(addresses)s.",
            lambda m: setattr(m, "string", "Тэст адпраўлены."),
            "placeholders",
        ),
        ("Draft saved.", lambda m: setattr(m, "string", ""), "untranslated"),
        ("Draft saved.", lambda m: m.flags.add("fuzzy"), "fuzzy"),
    ],
)
def test_a_broken_admin_translation_is_caught(msgid, change, problem):
    admin = catalogs.extract(domain=i18n.ADMIN_DOMAIN)
    catalog = catalogs.read_catalog("be", i18n.ADMIN_DOMAIN)
    change(catalog.get(msgid))
    found = catalogs.problems("be", admin, catalog, domain=i18n.ADMIN_DOMAIN)
    assert len(found) == 1 and problem in found[0] and "(admin)" in found[0], found


def test_a_message_missing_from_an_admin_catalog_is_caught():
    admin = catalogs.extract(domain=i18n.ADMIN_DOMAIN)
    catalog = catalogs.read_catalog("ru", i18n.ADMIN_DOMAIN)
    catalog.delete("Your account")
    found = catalogs.problems("ru", admin, catalog, domain=i18n.ADMIN_DOMAIN)
    assert found == ["ru (admin): missing 'Your account'"]


def test_the_admin_catalog_falls_back_on_the_readers_catalog(languages):
    admin = i18n.translations("be", i18n.ADMIN_DOMAIN)
    assert admin.gettext("Your account") == "Ваш акаўнт"
    assert admin.gettext("Subscribe") == "Падпісацца"  # shared: from messages.po
    # Ukrainian readers' pages exist, an Ukrainian admin does not: the readers' catalog only.
    assert i18n.translations("uk", i18n.ADMIN_DOMAIN).gettext("Your account") == "Your account"


def test_an_editors_language_falls_back_to_the_default_then_english(languages):
    assert i18n.admin_languages() == ("en", "be", "ru")
    assert i18n.admin_language("ru") == "ru"
    assert i18n.admin_language(None) == "en"
    assert i18n.admin_language("uk") == "en"  # readers' language, not the admin's
    assert i18n.admin_language(None, "de, ru;q=0.8, be;q=0.9") == "be"
    assert i18n.admin_language(None, "ru-RU") == "ru"
    languages("be=Беларуская,en=English")
    assert i18n.admin_language(None) == "be"  # the instance default, spoken by the admin
    languages("pl=Polski,en=English")
    assert i18n.admin_language(None) == "en"  # the default is not spoken by the admin
    assert i18n.admin_language("ru") == "ru"  # an editor's choice needs no reader language


def test_editor_messages_are_english_outside_the_admin(languages):
    languages("be=Беларуская,en=English")
    assert i18n.admin_gettext("Must be text.") == "Must be text."  # the API, the CLI, tasks
    token = i18n.set_domain(i18n.ADMIN_DOMAIN)
    try:
        with i18n.language("be"):
            assert i18n.admin_gettext("Must be text.") == "Павінен быць тэкст."
            assert i18n.gettext("Subscribe") == "Падпісацца"  # shared text, on an admin page
    finally:
        i18n.reset_current(token)
    assert i18n.admin_gettext("Must be text.") == "Must be text."


def test_stored_english_is_read_back_into_the_editors_words(languages):
    languages("ru=Русский,en=English")
    paused = reasons.stored(reasons.PAUSED_BY, who="ann@example.org (a.b)")
    failed = reasons.stored(reasons.SCHEDULE_FAILED, when="2030-05-01T09:30", problem="x: y.")
    assert paused == "Paused by ann@example.org (a.b)."  # stored: English, for the API and CLI
    assert reasons.shown(paused) == paused  # outside the admin: as stored
    token = i18n.set_domain(i18n.ADMIN_DOMAIN)
    try:
        with i18n.language("ru"):
            assert reasons.shown(paused) == "Приостановил(а) ann@example.org (a.b)."  # noqa: RUF001
            # The most specific message wins over the one it also matches.
            engine = reasons.shown(reasons.PAUSED_BY_ENGINE)
            assert engine == "Приостановлено системой доставки."
            assert reasons.shown(failed) == (
                "Отправка, запланированная на 2030-05-01T09:30 UTC, не началась: x: y."
            )
            assert reasons.shown("Paused by hand, then some") == "Paused by hand, then some"
    finally:
        i18n.reset_current(token)


def test_extraction_sees_templates_python_and_mails(template):
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    assert "Confirm your subscription" in ids  # web page and mail template
    assert "Please tick at least one list." in ids  # the domain's validation message
    assert "Read the post" in ids  # a default button text, marked with N_
    assert "signature" in ids  # a plural


def _catalog_with(lang: str, msgid, change):
    catalog = catalogs.read_catalog(lang)
    change(catalog.get(msgid))
    return catalog


@pytest.mark.parametrize(
    ("msgid", "change", "problem"),
    [
        ("Hello %(name)s,", lambda m: setattr(m, "string", "Прывітанне!"), "placeholders"),
        ("Hello %(name)s,", lambda m: setattr(m, "string", "Вітаем, %(nam)s!"), "placeholders"),
        ("Subscribe", lambda m: setattr(m, "string", ""), "untranslated"),
        ("Subscribe", lambda m: m.flags.add("fuzzy"), "fuzzy"),
        ("signature", lambda m: setattr(m, "string", ("подпіс", "подпісы")), "plural forms"),
    ],
)
def test_a_broken_translation_is_caught(template, msgid, change, problem):
    catalog = _catalog_with("be", msgid, change)
    found = catalogs.problems("be", template, catalog)
    assert len(found) == 1 and problem in found[0], found


def test_a_message_missing_from_a_catalog_is_caught(template):
    catalog = catalogs.read_catalog("ru")
    catalog.delete("Yes, subscribe me")
    assert catalogs.problems("ru", template, catalog) == ["ru: missing 'Yes, subscribe me'"]


# --- Compiling ------------------------------------------------------------------------------


def test_catalogs_compile_when_missing_or_older(monkeypatch, tmp_path):
    shutil.copytree(i18n.TRANSLATIONS, tmp_path / "translations")
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path / "translations")
    for mo in (tmp_path / "translations").glob("*/LC_MESSAGES/*.mo"):
        mo.unlink()
    written = i18n.compile_catalogs()
    assert sorted((p.parent.parent.name, p.stem) for p in written) == sorted(
        [(lang, "messages") for lang in SHIPPED] + [(lang, "admin") for lang in ADMIN_SHIPPED]
    )
    assert i18n.compile_catalogs() == []  # up to date: nothing rewritten
    po = tmp_path / "translations" / "pl" / "LC_MESSAGES" / "messages.po"
    later = time.time() + 10
    os.utime(po, (later, later))
    assert [p.parent.parent.name for p in i18n.compile_catalogs()] == ["pl"]


# --- Plurals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "forms"),
    [
        ("en", {1: "signature", 2: "signatures", 5: "signatures", 21: "signatures"}),
        ("be", {1: "подпіс", 2: "подпісы", 5: "подпісаў", 11: "подпісаў", 21: "подпіс"}),
        ("ru", {1: "подпись", 3: "подписи", 5: "подписей", 12: "подписей", 101: "подпись"}),
        ("uk", {1: "підпис", 4: "підписи", 5: "підписів", 14: "підписів", 24: "підписи"}),
        ("pl", {1: "podpis", 2: "podpisy", 12: "podpisów", 21: "podpisów", 22: "podpisy"}),
    ],
)
def test_plural_forms_follow_each_language(lang, forms):
    catalog = i18n.translations(lang)
    assert {n: catalog.ngettext("signature", "signatures", n) for n in forms} == forms


# --- Choosing the language ------------------------------------------------------------------


def test_the_first_enabled_choice_wins_then_accept_language_then_the_default(languages):
    assert i18n.negotiate(["be"], "ru") == "be"
    assert i18n.negotiate(["xx", None], "ru") == "ru"  # unknown ?lang= falls through quietly
    assert i18n.negotiate([], "de-DE,uk;q=0.8,ru;q=0.9") == "ru"
    assert i18n.negotiate([], "pl-PL") == "pl"
    assert i18n.negotiate([], ";;q=x,, de;q=abc, zz") == "en"  # malformed: the default
    assert i18n.negotiate([], "ru;q=0") == "en"  # "not Russian"
    assert i18n.negotiate([None], None) == "en"


def test_a_language_removed_from_the_settings_gives_the_default(languages):
    languages("be=Беларуская,en=English")
    assert i18n.enabled() == ("be", "en")
    assert i18n.resolve("ru") == "be" and i18n.resolve("en") == "en"
    with i18n.language("ru") as chosen:
        assert chosen == "be" and i18n.gettext("Subscribe") == "Падпісацца"
    assert i18n.current() == "be"


def test_domain_messages_follow_the_current_language(languages):
    with i18n.language("uk"):
        assert i18n.gettext("Please keep the name under %(max)s characters.", max=200) == (
            "Ім\u2019я має бути коротшим за 200 символів."
        )
    assert i18n.gettext("Subscribe") == "Subscribe"


# --- Formats --------------------------------------------------------------------------------


def test_numbers_dates_and_countries_in_the_readers_words():
    assert i18n.format_number(1234, "en") == "1,234"
    assert i18n.format_number(1234, "be") == "1\xa0234"
    assert i18n.format_number(1234567, "pl") == "1\xa0234\xa0567"
    moment = datetime(2026, 6, 5, 18, 0, tzinfo=ZoneInfo("Europe/Minsk"))
    assert i18n.format_moment(moment, "en") == "Friday 5 June 2026, 18:00"
    assert i18n.format_moment(moment, "be") == "пятніца 5 чэрвеня 2026, 18:00"
    assert i18n.format_moment(moment, "pl") == "piątek 5 czerwca 2026, 18:00"
    assert i18n.format_day(moment, "ru") == "5 июня 2026"
    ru = dict(i18n.country_names("ru"))
    assert ru["BY"] == "Беларусь" and ru["DE"] == "Германия"
    names = [name for _code, name in i18n.country_names("uk")]
    assert names == sorted(names, key=str.casefold) and "Польща" in names


# --- The commands ---------------------------------------------------------------------------


def test_update_brings_back_a_lost_message_for_translation_and_check_fails_until_then(
    monkeypatch, tmp_path
):
    from click.testing import CliRunner

    from clarion.cli import main

    shutil.copytree(i18n.TRANSLATIONS, tmp_path / "translations")
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path / "translations")
    monkeypatch.setattr(catalogs, "TRANSLATIONS", tmp_path / "translations")
    runner = CliRunner()
    assert runner.invoke(main, ["i18n", "check"]).output.endswith("catalogs complete\n")
    ru = catalogs.read_catalog("ru")
    ru.delete("Yes, subscribe me")
    catalogs.write_catalog("ru", ru)
    failed = runner.invoke(main, ["i18n", "check"])
    assert failed.exit_code == 1 and "ru: missing 'Yes, subscribe me'" in failed.output
    updated = runner.invoke(main, ["i18n", "update"])
    assert "ru/LC_MESSAGES/messages.po: 1 to translate" in updated.output
    assert "be/LC_MESSAGES/messages.po: 0 to translate" in updated.output
    failed = runner.invoke(main, ["i18n", "check"])
    # Back, with a guess from a similar message marked fuzzy: a translator must look at it.
    assert failed.exit_code == 1 and "ru: fuzzy 'Yes, subscribe me'" in failed.output
    # Nothing else changed: the other catalogs were not rewritten.
    for lang in ("be", "pl", "uk"):
        assert (
            catalogs.po_path(lang).read_bytes()
            == (
                i18n.PROJECT_ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po"
            ).read_bytes()
        )
