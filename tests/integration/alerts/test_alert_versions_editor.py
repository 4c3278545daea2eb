"""The alert form's versions in other languages: added, refused with the language and field
named (keeping what was typed), counted per reader, previewed, test-sent and removed; the same
from a JSON file."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import update

from clarion.cli import main
from clarion.models import Alert, Subscriber
from tests.helpers import csrf_from, refresh

BODY_RU = "Напишите Марии сегодня."


def submit(client, url, data):
    page = client.get("/admin/account").get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def newsletter(lists, **extra) -> dict:
    return {
        "kind": "newsletter",
        "subject": "Write to Maria",
        "body_md": "Write to Maria today.",
        "lists": [str(lists["alerts"].id)],
        "language": "en",
        **extra,
    }


def test_a_version_is_added_refused_with_its_field_named_previewed_test_sent_and_removed(
    client, session, login, lists, subscribed, smtp_sink
):
    login(client, "editor")
    missing = submit(
        client, "/admin/alerts/new", newsletter(lists, **{"ru.subject": "Напишите Марии"})
    )
    page = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert "ru.body_md" in page and "Русский version: Body (Markdown) is required." in page
    assert 'value="Напишите Марии"' in page  # what was typed is kept
    assert session.query(Alert).count() == 0

    saved = submit(
        client,
        "/admin/alerts/new",
        newsletter(lists, **{"ru.subject": "Напишите Марии", "ru.body_md": BODY_RU}),
    )
    assert saved.status_code == 302
    refresh(session)
    alert = session.query(Alert).one()
    assert alert.language == "en" and alert.translations["ru"]["subject"] == "Напишите Марии"

    readers = [sid for (sid,) in session.query(Subscriber.id).order_by(Subscriber.id)]
    session.execute(update(Subscriber).where(Subscriber.id == readers[0]).values(language="ru"))
    session.commit()
    shown = client.get(f"/admin/alerts/{alert.id}").get_data(as_text=True)
    assert 'data-version="ru">Русский: 1 reader' in shown
    assert f'data-version="en">English (primary): {len(readers) - 1} reader' in shown

    preview = client.get(f"/admin/alerts/{alert.id}/preview?lang=ru").get_data(as_text=True)
    assert "Напишите Марии" in preview and BODY_RU in preview
    frame = client.get(f"/admin/alerts/{alert.id}/preview.html?lang=ru").get_data(as_text=True)
    assert '<html lang="ru"' in frame and BODY_RU in frame
    primary = client.get(f"/admin/alerts/{alert.id}/preview.html").get_data(as_text=True)
    assert '<html lang="en"' in primary and BODY_RU not in primary

    smtp_sink.clear()
    test = {"test_to": "me@example.org", "language": "ru"}
    submit(client, f"/admin/alerts/{alert.id}/test", test)
    (message,) = smtp_sink.wait_for(1)
    assert message.subject == "[Test] Напишите Марии"
    assert message.message["Content-Language"] == "ru"

    edit = client.get(f"/admin/alerts/{alert.id}/edit").get_data(as_text=True)
    assert 'name="ru.remove"' in edit and BODY_RU in edit
    fields = newsletter(
        lists, **{"ru.subject": "Напишите Марии", "ru.body_md": BODY_RU, "ru.remove": "on"}
    )
    submit(client, f"/admin/alerts/{alert.id}/edit", fields)
    refresh(session)
    assert session.get(Alert, alert.id).translations == {}


def test_an_unfinished_version_may_be_saved_half_written(client, session, login, lists):
    login(client, "editor")
    fields = newsletter(lists, **{"be.subject": "Напішыце Марыі", "be.unfinished": "on"})
    assert submit(client, "/admin/alerts/new", fields).status_code == 302
    refresh(session)
    alert = session.query(Alert).one()
    assert alert.translations["be"]["unfinished"] is True
    shown = client.get(f"/admin/alerts/{alert.id}").get_data(as_text=True)
    assert "unfinished: its readers get the primary version" in shown


def test_cli_creates_an_alert_with_versions_and_names_the_missing_field(
    settings, session, lists, tmp_path
):
    data = {
        "kind": "newsletter",
        "subject": "Навіны",
        "language": "be",
        "fields": {"body_md": "Напішыце Марыі."},
        "audience": {"lists": ["alerts"]},
        "translations": {"ru": {"subject": "Новости", "fields": {"body_md": BODY_RU}}},
    }
    good = tmp_path / "alert.json"
    good.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["alerts", "create", str(good)])
    assert result.exit_code == 0, result.output
    alert = session.get(Alert, int(result.output.strip()))
    assert alert.language == "be" and alert.translations["ru"]["fields"] == {"body_md": BODY_RU}
    data["translations"] = {"ru": {"subject": "Новости", "fields": {}}, "de": {"subject": "x"}}
    good.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["alerts", "create", str(good)])
    assert result.exit_code == 1
    assert "ru.body_md: Русский version: Body (Markdown) is required." in result.output
    assert "de.language: Unknown language 'de'" in result.output
