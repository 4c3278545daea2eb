"""An alert's versions in other languages: which one a reader gets, and what a version needs."""

from __future__ import annotations

import pytest

from clarion.alerts import versions
from clarion.alerts.campaigns import Draft
from clarion.config import reset_settings
from clarion.errors import ValidationError
from clarion.models import Alert, AlertKind

POST = {"post_url": "https://blog.example.org/p", "title": "Free them all"}


@pytest.fixture(autouse=True)
def _settings(env):
    """Every test here reads settings."""


def alert(**values) -> Alert:
    return Alert(
        kind=values.pop("kind", AlertKind.NEW_POST),
        subject=values.pop("subject", "Primary subject"),
        preheader="",
        fields=values.pop("fields", dict(POST)),
        audience=values.pop("audience", {"lists": [1]}),
        **values,
    )


def test_a_version_missing_a_required_field_is_refused_naming_language_and_field():
    errors: dict[str, str] = {}
    raw = {"ru": {"subject": "Тема", "fields": {"title": ""}}, "be": {"subject": ""}}
    kept = versions.clean_versions(AlertKind.NEW_POST, "en", POST, raw, errors)
    assert errors["ru.title"] == "Русский version: Title is required."
    assert errors["be.subject"] == "Беларуская version: the subject is required."
    assert errors["be.title"].startswith("Беларуская version:")
    # The URL is the same in every language: left empty, the primary's is taken.
    assert "ru.post_url" not in errors
    assert kept["ru"]["subject"] == "Тема"  # what was typed is kept for the form


def test_an_unfinished_version_may_lack_required_fields_but_not_be_wrong():
    errors: dict[str, str] = {}
    raw = {"ru": {"subject": "", "fields": {"post_url": "not a url"}, "unfinished": True}}
    kept = versions.clean_versions(AlertKind.NEW_POST, "en", POST, raw, errors)
    assert list(errors) == ["ru.post_url"]
    assert kept["ru"]["unfinished"] is True


def test_a_version_in_the_primary_or_an_unknown_language_is_refused(env):
    errors: dict[str, str] = {}
    raw = {"en": {"subject": "x"}, "de": {"subject": "y"}}
    versions.clean_versions(AlertKind.NEWSLETTER, "en", {"body_md": "b"}, raw, errors)
    assert "primary language" in errors["en.language"]
    assert "Unknown language 'de'" in errors["de.language"]


def test_the_reader_gets_their_finished_version_else_the_primary(env):
    a = alert(
        language="en",
        translations={
            "be": {"subject": "Be", "fields": {"title": "Вызваліце"}, "unfinished": False},
            "ru": {"subject": "Ru", "fields": {"title": "Освободите"}, "unfinished": False},
            "uk": {"subject": "Uk", "fields": {"title": "Звільніть"}, "unfinished": True},
        },
    )
    assert versions.finished(a) == ["be", "ru"]
    content, lang = versions.content(a, "ru")
    assert (content.subject, content.fields["title"], lang) == ("Ru", "Освободите", "ru")
    assert content.fields["post_url"] == POST["post_url"]  # neutral field from the primary
    assert versions.content(a, "pl")[0].subject == "Primary subject"
    counts = versions.reader_counts({"be": 3, "ru": 2, "uk": 4, "pl": 1, "en": 5, "xx": 1}, a)
    assert counts == {"en": 11, "be": 3, "ru": 2}
    # A language later removed from CLARION_LANGUAGES: its version is no longer chosen.
    env.setenv("CLARION_LANGUAGES", "en=English,be=Беларуская")
    reset_settings()
    assert versions.finished(a) == ["be"]
    assert versions.reader_counts({"ru": 2, "be": 1}, a) == {"en": 2, "be": 1}


def test_without_a_primary_language_it_is_the_audience_s_one_language_else_the_default():
    assert versions.primary_language(alert(audience={"lists": [1], "languages": ["be"]})) == "be"
    assert versions.primary_language(alert(audience={"languages": ["be", "ru"]})) == "en"
    assert versions.primary_language(alert(language="ru")) == "ru"


def test_json_versions_are_read_and_each_error_names_its_place():
    draft = Draft.from_json(
        {
            "kind": "newsletter",
            "subject": "S",
            "language": "be",
            "fields": {"body_md": "b"},
            "translations": {"ru": {"subject": "Тема", "fields": {"body_md": "текст"}}},
        }
    )
    assert draft.language == "be"
    assert draft.translations == {
        "ru": {
            "subject": "Тема",
            "preheader": "",
            "fields": {"body_md": "текст"},
            "unfinished": False,
        }
    }
    with pytest.raises(ValidationError) as caught:
        Draft.from_json(
            {
                "kind": "newsletter",
                "translations": {
                    "ru": {"subject": 3, "fields": {"body_md": 1}, "colour": "red"},
                    "be": "text",
                },
            }
        )
    errors = caught.value.errors
    assert set(errors) == {
        "translations.ru.subject",
        "translations.ru.fields",
        "translations.ru.colour",
        "translations.be",
    }
