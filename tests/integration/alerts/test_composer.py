"""The composer's live preview and test send: what is typed, rendered for a sample reader as a
send renders it; problems named without losing the text; CSRF, roles, rate limit, audit."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from clarion.alerts import campaigns
from clarion.alerts.freeze import freeze_content
from clarion.alerts.rendering import AlertContent
from clarion.config import get_settings
from clarion.delivery import testsend
from clarion.delivery.messages import AlertFrame, Recipient, Skeleton
from clarion.models import Alert, AuditEvent
from tests.helpers import csrf_from, refresh

BODY = 'Dear {{ first_name | default("friend") }},\n\n[Write to Maria](https://act.example.org/m){button}'
SUBJECT = '{{ first_name | default("Friend") }}, write to Maria'


def token(client) -> str:
    return csrf_from(client.get("/admin/account").get_data(as_text=True))


def typed(lists, **extra) -> dict:
    return {
        "kind": "newsletter",
        "subject": SUBJECT,
        "body_md": BODY,
        "lists": [str(lists["alerts"].id)],
        "language": "en",
        **extra,
    }


def preview(client, form: dict, **extra):
    data = {**form, "csrf_token": token(client), **extra}
    return client.post("/admin/alerts/composer/preview", data=data)


def sent_html(session, alert: Alert, name: str) -> str:
    """The HTML part the send path builds for a reader called `name`, its tracked links and
    the reader's own links put back as the preview shows them (neutral)."""
    content, lang = AlertContent(alert.kind.value, alert.subject, alert.fields), alert.language
    site = campaigns.site_context(session, alert)
    frozen = freeze_content(content, site, None, lang)
    meta = {
        "from": "A <a@example.org>",
        "reply_to": None,
        "list": {"id": 1, "slug": "a", "name": "A"},
    }
    frame = AlertFrame(alert.id, alert.uid, frozen.subject, frozen.html, frozen.text, meta)
    built = Skeleton(frame, get_settings()).build(Recipient(1, "uid1", "r@example.org", name))
    message = email.message_from_bytes(built.data, policy=email.policy.default)
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    base = get_settings().base_url
    html = re.sub(rf"{re.escape(base)}/r/[^/]+/(\d+)", lambda m: frozen.links[int(m[1])], html)
    return re.sub(
        rf"{re.escape(base)}/(unsubscribe|preferences)/[^\"\s<]+", f"{base}/subscribe", html
    )


def test_the_preview_is_what_a_send_writes_for_that_reader(client, session, login, lists):
    login(client, "editor")
    answer = preview(client, typed(lists), sample_name="Ales Bialiatski").get_json()
    assert answer["errors"] == {}
    assert answer["subject"] == "Ales, write to Maria"
    assert (
        "Dear Ales," in answer["text"]
        and "Write to Maria (https://act.example.org/m)" in answer["text"]
    )
    assert answer["versions"] == [["en", "English"]]
    framed = client.get(answer["frame"])
    assert "style-src 'unsafe-inline'" in framed.headers["Content-Security-Policy"]
    assert "script-src" not in framed.headers["Content-Security-Policy"]
    html = framed.get_data(as_text=True)

    saved = client.post("/admin/alerts/new", data={**typed(lists), "csrf_token": token(client)})
    assert saved.status_code == 302
    refresh(session)
    alert = session.query(Alert).one()
    assert html == sent_html(session, alert, "Ales Bialiatski")
    assert html == testsend.render_for_reader(session, alert, None, "Ales Bialiatski").html
    anonymous = preview(client, typed(lists)).get_json()
    assert anonymous["subject"] == "Friend, write to Maria" and "Dear friend," in anonymous["text"]


def test_problems_are_named_by_field_and_nothing_is_saved(client, session, login, lists):
    login(client, "editor")
    form = typed(lists, body_md="Hi {{ frist_name }}", preheader="{{ email }}")
    answer = preview(client, form).get_json()
    assert "{{ frist_name }}" in answer["errors"]["body_md"]
    assert "{{ first_name }}" in answer["errors"]["body_md"]
    assert "{{ email }}" in answer["errors"]["preheader"]
    assert "Hi {{ frist_name }}" in answer["text"]  # still shown, as typed
    refused = client.post("/admin/alerts/new", data={**form, "csrf_token": token(client)})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Unknown field {{ frist_name }}" in page
    assert ">Hi {{ frist_name }}</textarea>" in page  # what was typed is kept
    assert session.query(Alert).count() == 0


def test_each_version_is_previewed_in_its_language(client, login, lists):
    login(client, "editor")
    form = typed(lists, **{"ru.subject": "{{ name }}, напишите Марии", "ru.body_md": "Привет"})
    answer = preview(client, form, preview_lang="ru", sample_name="Алесь").get_json()
    assert answer["language"] == "ru" and answer["subject"] == "Алесь, напишите Марии"
    assert [code for code, _ in answer["versions"]] == ["en", "ru"]
    assert '<html lang="ru"' in client.get(answer["frame"]).get_data(as_text=True)


def test_the_preview_needs_a_csrf_token_and_the_compose_permission(client, login, lists, app):
    login(client, "editor")
    refused = client.post("/admin/alerts/composer/preview", data=typed(lists))
    assert refused.status_code == 400
    frame = preview(client, typed(lists)).get_json()["frame"]
    other = app.test_client()
    login(other, "viewer")
    assert preview(other, typed(lists)).status_code == 403
    assert other.get(frame).status_code == 403
    login(other, "owner")  # another editor may compose, but not load this editor's frame
    assert other.get(frame).status_code == 404


def test_a_test_of_the_preview_is_sent_audited_and_rate_limited(
    client, session, login, lists, smtp_sink, monkeypatch
):
    monkeypatch.setattr(testsend, "TESTS_PER_HOUR", "2/hour")
    editor = login(client, "editor")
    smtp_sink.clear()
    form = {**typed(lists), "sample_name": "Ales", "test_to": "me@example.org"}
    answer = client.post("/admin/alerts/composer/test", data={**form, "csrf_token": token(client)})
    assert answer.get_json() == {"sent": ["me@example.org"]}
    (message,) = smtp_sink.wait_for(1)
    assert message.subject == "[Test] Ales, write to Maria"
    refresh(session)
    entry = session.query(AuditEvent).filter_by(action="alert.test_send").one()
    assert entry.editor_id == editor.id and entry.target == "alert:unsaved"
    client.post("/admin/alerts/composer/test", data={**form, "csrf_token": token(client)})
    third = client.post("/admin/alerts/composer/test", data={**form, "csrf_token": token(client)})
    assert (
        third.status_code == 422 and "Too many test sends" in third.get_json()["errors"]["test_to"]
    )


@pytest.mark.parametrize("role", ["editor"])
def test_the_form_offers_the_toolbar_the_fields_and_the_preview(client, login, role):
    login(client, role)
    page = client.get("/admin/alerts/new?kind=newsletter").get_data(as_text=True)
    assert 'role="toolbar"' in page and 'aria-controls="body_md"' in page
    assert "first_name | default(" in page and 'id="composer-frame"' in page
    assert "sandbox title=" in page  # a sandbox without allow-scripts
