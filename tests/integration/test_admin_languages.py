"""The admin in English, Belarusian and Russian: the editor's choice, on every page, audited."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from clarion import i18n
from clarion.db import utcnow
from clarion.models import Alert, AlertStatus, AuditEvent, Editor, Petition
from tests.helpers import csrf_from

# Every admin page reached without an id, and the phrase each must show in the editor's words.
PAGES = {
    "/admin/": "Latest alerts",
    "/admin/alerts": "Alerts",
    "/admin/alerts/new?kind=hashtag_day": "Time zone of the action",
    "/admin/audit": "Audit log",
    "/admin/settings/bounces": "Bounce policy",
    "/admin/editors": "New editor",
    "/admin/feeds": "No feed yet.",
    "/admin/feeds/new": "Feed address",
    "/admin/jobs": "Import subscribers from CSV",
    "/admin/lists": "No list yet.",
    "/admin/lists/new": "Sender for alerts to this list",
    "/admin/outbox": "Mail sent by this installation to the local mail catcher, newest first.",
    "/admin/petitions": "New petition",
    "/admin/petitions/new": "Open for signatures",
    "/admin/settings/privacy": "What we keep about readers",
    "/admin/stats": "No alert has gone out yet.",
    "/admin/settings/tracking": "Track opens",
    "/admin/subscribers": "Tag everyone this filter matches",
    "/admin/tags": "No tag yet.",
    "/admin/account": "The admin speaks to you in",
}
# Sentences of the admin that must not be left in English on a translated page.
ENGLISH = (
    "Log out",
    "Your account",
    "Import / export",
    "Nothing was saved",
    "Send a test",
    "Progress and results",
    "is required.",
)
HTML_LANG = re.compile(r'<html lang="([^"]+)"')


def phrase(msgid: str, lang: str) -> str:
    """`msgid` as the admin shows it in `lang`, escaped as in the page."""
    text = i18n.translations(lang, i18n.ADMIN_DOMAIN).gettext(msgid)
    if lang != "en":
        assert text != msgid, f"{msgid!r} has no {lang} translation"
    return text


@pytest.fixture
def speaking(client, session, login):
    """Log in as an owner who chose `lang` (None: never chose)."""

    def log_in(lang: str | None):
        editor = login(client, "owner")
        session.get(Editor, editor.id).language = lang
        session.commit()
        return editor

    return log_in


def page_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def assert_speaks(html: str, lang: str, path: str, msgid: str) -> None:
    assert HTML_LANG.search(html).group(1) == lang, path
    assert phrase(msgid, lang) in html, (path, msgid)
    assert phrase("Log out", lang) in html, path  # the navigation too
    if lang != "en":
        for sentence in (*ENGLISH, msgid):
            assert sentence not in html, (path, sentence)


@pytest.mark.parametrize("lang", ["en", "be", "ru"])
def test_every_admin_page_speaks_the_editors_language(client, session, speaking, lang):
    editor = speaking(lang)
    pages = dict(PAGES)
    draft = Alert(
        kind="hashtag_day",
        name="Day",
        subject="S",
        fields={"hashtags": "#Free"},
        audience={},
        status=AlertStatus.DRAFT,
    )
    sent = Alert(
        kind="newsletter",
        name="Sent one",
        subject="S",
        fields={"body_md": "x"},
        audience={},
        status=AlertStatus.SENT,
        started_at=utcnow(),
        finished_at=utcnow(),
    )
    petition = Petition(slug="free-them", title="Free them", goal=10, created_by_id=editor.id)
    session.add_all([draft, sent, petition])
    session.commit()
    pages[f"/admin/alerts/{draft.id}"] = "Announcement and reminder"
    pages[f"/admin/alerts/{draft.id}/edit"] = "Suggested post"
    pages[f"/admin/alerts/{sent.id}/progress"] = "Possible duplicates:"
    pages[f"/admin/alerts/{sent.id}/stats"] = "Clicks per link"
    pages[f"/admin/petitions/{petition.id}"] = "Delete this petition"
    for path, msgid in pages.items():
        assert_speaks(page_of(client, path), lang, path, msgid)


def test_an_editor_who_never_chose_gets_the_instance_default_or_english(client, speaking):
    speaking(None)
    html = page_of(client, "/admin/")
    assert HTML_LANG.search(html).group(1) == "en"  # the tests' default language is English
    assert "Log out" in html


@pytest.mark.parametrize(("accept", "lang"), [("be,en;q=0.5", "be"), ("ru-RU", "ru"), ("uk", "en")])
def test_the_login_page_follows_accept_language_among_the_admins_languages(client, accept, lang):
    html = client.get("/admin/login", headers={"Accept-Language": accept}).get_data(as_text=True)
    assert HTML_LANG.search(html).group(1) == lang
    assert phrase("Log in", lang) in html


def test_a_wrong_login_is_told_in_the_browsers_language(client):
    page = client.get("/admin/login", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    response = client.post(
        "/admin/login",
        data={"email": "x@example.org", "password": "wrong", "csrf_token": csrf_from(page)},
        headers={"Accept-Language": "ru"},
    )
    assert response.status_code == 401
    assert "Неверный адрес, пароль или код" in response.get_data(as_text=True)


def test_changing_ones_language_persists_is_audited_and_speaks_at_once(client, session, speaking):
    editor = speaking(None)
    token = csrf_from(page_of(client, "/admin/account"))
    response = client.post(
        "/admin/account/language",
        data={"language": "be", "csrf_token": token},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert HTML_LANG.search(html).group(1) == "be"
    assert "Захавана. Цяпер адмінка размаўляе на вашай мове." in html  # the flash, already in be
    assert '<option value="be" lang="be" selected>Беларуская</option>' in html
    session.expire_all()
    assert session.get(Editor, editor.id).language == "be"
    events = session.query(AuditEvent).filter_by(action="editor.language").all()
    assert [(e.editor_id, e.target, e.detail) for e in events] == [
        (editor.id, f"editor:{editor.id}", {"language": "be"})
    ]
    # A later page, a new request: still Belarusian; the validation messages of the domain too.
    token = csrf_from(html)
    refused = client.post("/admin/account", data={"timezone": "Mars/Olympus", "csrf_token": token})
    assert refused.status_code == 422
    assert "Выберыце часавы пояс, напрыклад Europe/Vilnius." in refused.get_data(as_text=True)


@pytest.mark.parametrize("value", ["xx", "uk", "", "be<script>"])
def test_an_unknown_language_is_refused_and_nothing_changes(client, session, speaking, value):
    editor = speaking("ru")
    token = csrf_from(page_of(client, "/admin/account"))
    response = client.post("/admin/account/language", data={"language": value, "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Выберите один из вариантов: English, Беларуская, Русский." in html
    assert 'aria-invalid="true"' in html
    session.expire_all()
    assert session.get(Editor, editor.id).language == "ru"
    assert session.query(AuditEvent).filter_by(action="editor.language").count() == 0


def test_the_stall_reasons_and_kind_labels_follow_the_editor(
    client, session, speaking, monkeypatch
):
    speaking("ru")
    html = page_of(client, "/admin/alerts")
    assert "День хештегов" in html and "Hashtag day" not in html  # kind labels of the domain
    from clarion.config import get_settings, reset_settings
    from clarion.delivery import health
    from clarion.redisconn import reset_redis
    from tests.services import RedisServer

    # A Redis no worker knows: the session's worker, once started, says it is alive there.
    quiet = RedisServer().start()
    monkeypatch.setenv("CLARION_REDIS_URL", quiet.url)
    reset_settings()
    reset_redis()
    token = i18n.set_domain(i18n.ADMIN_DOMAIN)
    try:
        with i18n.language("ru"):
            reasons = health.stall_reasons(get_settings())
    finally:
        i18n.reset_current(token)
        quiet.cleanup()
        reset_redis()
    assert any("воркер" in reason for reason in reasons), reasons


def test_the_domains_refusals_reach_the_editor_in_their_language(client, session, speaking):
    speaking("be")
    draft = Alert(
        kind="newsletter",
        name="No lists",
        subject="S",
        fields={"body_md": "x"},
        audience={},
        status=AlertStatus.DRAFT,
    )
    session.add(draft)
    session.commit()
    token = csrf_from(page_of(client, f"/admin/alerts/{draft.id}"))
    response = client.post(
        f"/admin/alerts/{draft.id}/schedule",
        data={"scheduled_at": "2030-05-01T09:30", "csrf_token": token},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Перад планаваннем выберыце хаця б адзін спіс." in html  # noqa: RUF001
    assert "Choose at least one list" not in html


def test_the_live_progress_script_gets_the_editors_words(client, session, speaking):
    speaking("ru")
    alert = Alert(
        kind="newsletter",
        name="Paused one",
        subject="S",
        fields={"body_md": "x"},
        audience={},
        status=AlertStatus.PAUSED,
    )
    session.add(alert)
    session.commit()
    html = page_of(client, f"/admin/alerts/{alert.id}/progress")
    assert 'data-stalled-label="Застряло:"' in html
    labels = re.search(r"data-status-labels='([^']*)'", html).group(1)
    assert json.loads(unescape(labels))["paused"] == "приостановлена"
    assert '<strong data-field="status">приостановлена</strong>' in html


def _draft(session, status: AlertStatus = AlertStatus.DRAFT) -> Alert:
    alert = Alert(
        kind="newsletter",
        name="Free them",
        subject="S",
        fields={"body_md": "x"},
        audience={},
        status=status,
    )
    session.add(alert)
    session.commit()
    return alert


@pytest.mark.parametrize(
    ("lang", "told"),
    [("be", "Не больш за 10 адрасоў на адзін тэст."), ("ru", "Не больше 10 адресов на один тест.")],  # noqa: RUF001
)
def test_a_refusal_with_a_number_is_told_in_the_editors_language(
    client, session, speaking, lang, told
):
    speaking(lang)
    alert = _draft(session)
    token = csrf_from(page_of(client, f"/admin/alerts/{alert.id}"))
    addresses = ", ".join(f"r{i}@example.org" for i in range(11))
    response = client.post(
        f"/admin/alerts/{alert.id}/test",
        data={"test_to": addresses, "csrf_token": token},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert told in html
    assert "At most 10 addresses" not in html


def test_a_stored_status_reason_is_shown_in_the_editors_words(client, session, speaking):
    editor = speaking("ru")
    alert = _draft(session, AlertStatus.SENDING)
    token = csrf_from(page_of(client, f"/admin/alerts/{alert.id}"))
    client.post(f"/admin/alerts/{alert.id}/pause", data={"csrf_token": token})
    # Stored in English, as the API and the command line show it ...
    session.expire_all()
    assert session.get(Alert, alert.id).status_reason == f"Paused by {editor.email}."
    # ... and shown in the editor's words on every page that shows it.
    said = f"Приостановил(а) {editor.email}."  # noqa: RUF001
    assert said in page_of(client, f"/admin/alerts/{alert.id}")
    assert said in page_of(client, f"/admin/alerts/{alert.id}/progress")
    assert client.get(f"/admin/alerts/{alert.id}/progress.json").json["status_reason"] == said
    # A reason stored by the bounce policy keeps the detail it was given.
    session.get(Alert, alert.id).status_reason = (
        "Paused: our messages were refused for a policy or authentication reason (550 5.7.1 SPF "
        "fail). The problem is our sending — sender address, DKIM or SPF, the relay login or our "
        "reputation — not the readers. Fix it, then resume."
    )
    session.commit()
    html = page_of(client, f"/admin/alerts/{alert.id}")
    assert (
        "наши письма отклонены по причине политики или аутентификации (550 5.7.1 SPF fail)" in html
    )
    assert "Paused:" not in html


@pytest.mark.parametrize(
    ("lang", "paused", "logged_in"),
    [
        ("be", "Адпраўка прыпыненая", "Уваход у адмінку"),  # noqa: RUF001
        ("ru", "Отправка приостановлена", "Вход в админку"),
    ],
)
def test_the_audit_page_names_each_kind_of_event_in_the_editors_words(
    client, session, speaking, lang, paused, logged_in
):
    speaking(lang)
    alert = _draft(session, AlertStatus.SENDING)
    token = csrf_from(page_of(client, f"/admin/alerts/{alert.id}"))
    client.post(f"/admin/alerts/{alert.id}/pause", data={"csrf_token": token})
    html = page_of(client, "/admin/audit")
    assert paused in html and logged_in in html
    assert f'<option value="alert.pause" >{paused}</option>' in html  # the filter too
    assert "<code>alert.pause</code>" in html  # the code stays, as stored and exported
    assert "Sending paused" not in html and "Logged in" not in html
