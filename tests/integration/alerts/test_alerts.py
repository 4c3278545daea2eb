"""Alerts from the editor's side: per-kind forms, validation, layouts, images, preview, test
send, audience, scheduling in the editor's zone, duplicates, the public archive, the CLI."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from clarion.alerts.kinds import KINDS
from clarion.cli import main
from clarion.models import (
    Alert,
    AlertStatus,
    AuditEvent,
    Delivery,
    Editor,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from tests.helpers import csrf_from, refresh, tiny_png
from tests.unit.alerts.test_alert_rendering import ALL_FIELDS

PNG = tiny_png()


@pytest.fixture
def image_url(monkeypatch):
    """An image on a loopback web server, which Clarion may fetch because the operator allows it."""
    from clarion.config import reset_settings

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")
    reset_settings()
    yield f"http://127.0.0.1:{server.server_address[1]}/photo.png"
    server.shutdown()


def form_for(kind: str, fields: dict, lists, **extra) -> dict:
    data = {"kind": kind, "subject": f"Subject of {kind}", **fields}
    data["lists"] = [str(lists["alerts"].id)]
    data.update(extra)
    return data


def submit(client, url, data):
    page = client.get("/admin/account").get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def only_required(kind: str) -> dict:
    return {f.name: ALL_FIELDS[kind][f.name] for f in KINDS[kind].fields if f.required}


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
@pytest.mark.parametrize("which", ["all", "required"])
def test_compose_each_kind_then_preview(client, session, login, lists, image_url, kind, which):
    login(client, "editor")
    form_page = client.get(f"/admin/alerts/new?kind={kind}").get_data(as_text=True)
    for f in KINDS[kind].fields:
        assert f"{f.label}" in form_page
        if f.help:
            assert f.help in form_page
    assert form_page.count('class="required"') == 1 + sum(f.required for f in KINDS[kind].fields)
    fields = dict(ALL_FIELDS[kind]) if which == "all" else only_required(kind)
    if "image_url" in fields:
        fields["image_url"] = image_url
    response = submit(client, "/admin/alerts/new", form_for(kind, fields, lists, then="preview"))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/preview")
    refresh(session)
    alert = session.scalar(select(Alert))
    assert alert.kind.value == kind and alert.status == AlertStatus.DRAFT
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"Subject of {kind}" in preview and 'sandbox title="The alert as readers see it"' in preview
    )
    frame = client.get(f"/admin/alerts/{alert.id}/preview.html")
    assert frame.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Hello," in frame.get_data(as_text=True)
    if which == "all" and kind == "new_post":
        media_url = alert.fields["image_url"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/media/[0-9a-f]{32}\.png", media_url)
        assert media_url in frame.get_data(as_text=True)
        served = client.get(urlsplit(media_url).path)
        assert served.data == PNG and served.mimetype == "image/png"


def test_missing_fields_are_refused_naming_each_and_keeping_what_was_typed(
    client, session, login, lists
):
    login(client, "editor")
    data = form_for(
        "hashtag_day",
        {"hashtags": "no hash", "suggested_post": "x" * 300, "action_timezone": "Mars/Base"},
        lists,
        subject="",
    )
    response = submit(client, "/admin/alerts/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was saved" in html
    assert "Subject is required" in html
    assert "Write hashtags like #FreeThemAll" in html
    assert "Date of the action is required." in html and "Time of the action is required." in html
    assert "Choose a time zone such as Europe/Minsk" in html
    assert "shorten it to 280" in html or "Keep this under" in html
    assert 'value="no hash"' in html and "x" * 300 in html
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Alert)) == 0


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (
            "<mjml><mj-body>\n<mj-section>\n<mj-text>{{ title }}</mj-text>\n"
            "</mj-section></mj-body></mjml>",
            "MJML error on line 3: &lt;mj-text&gt; must be inside &lt;mj-column&gt;",
        ),
        (
            "<mjml><mj-body>\n<mj-section><mj-column>\n<mj-bogus/>\n</mj-column></mj-section></mj-body></mjml>",
            "MJML error on line 3: unknown element &lt;mj-bogus&gt;",
        ),
        (
            "<mjml><mj-body>\n<mj-section><mj-column>\n<mj-text>{{ titel }}</mj-text>",
            "Template error on line 3: &#39;titel&#39; is undefined",
        ),
        ("<mjml>\n{% for x in %}\n</mjml>", "Template error on line 2:"),
        (
            "<mjml><mj-body><mj-section><mj-column>\n"
            "<mj-text>{{ title.__class__.__mro__ }}</mj-text>"
            "</mj-column></mj-section></mj-body></mjml>",
            "is unsafe",
        ),
        (
            '<mjml><mj-body><mj-section><mj-column><mj-image src="https://cdn.example.net/x.png"/>'
            "</mj-column></mj-section></mj-body></mjml>",
            "would load https://cdn.example.net/x.png from another server",
        ),
        (
            "<mjml><mj-head><mj-raw><link rel='stylesheet' href='https://cdn.example.net/s.css'>"
            "</mj-raw></mj-head><mj-body><mj-section><mj-column><mj-text>x</mj-text>"
            "</mj-column></mj-section></mj-body></mjml>",
            "would load https://cdn.example.net/s.css from another server",
        ),
        (
            "<mjml><mj-body><mj-raw><object data='&#104;ttps://cdn.example.net/o.svg'></object>"
            "</mj-raw></mj-body></mjml>",
            "would load https://cdn.example.net/o.svg from another server",
        ),
    ],
)
def test_a_broken_custom_layout_reaches_the_editor_with_what_and_where(
    client, session, login, lists, layout, message
):
    login(client, "editor")
    data = form_for("new_post", only_required("new_post"), lists, layout_mjml=layout)
    response = submit(client, "/admin/alerts/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html, html[html.find("form-errors") :][:800]
    assert "<strong>layout</strong>" in html
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Alert)) == 0


def test_a_good_custom_layout_is_used(client, session, login, lists):
    login(client, "editor")
    layout = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>CUSTOM {{ title }} {{ recipient.greeting }}"
        '</mj-text><mj-text><a href="{{ recipient.unsubscribe_url }}">leave</a></mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    response = submit(
        client,
        "/admin/alerts/new",
        form_for("new_post", only_required("new_post"), lists, layout_mjml=layout),
    )
    alert_id = int(response.headers["Location"].rsplit("/", 1)[1])
    html = client.get(f"/admin/alerts/{alert_id}/preview.html").get_data(as_text=True)
    assert "CUSTOM Ales is free Hello," in html


def test_image_from_a_private_address_is_refused_by_default(client, session, login, lists):
    login(client, "editor")
    fields = dict(ALL_FIELDS["new_post"], image_url="http://127.0.0.1:9/photo.png")
    response = submit(client, "/admin/alerts/new", form_for("new_post", fields, lists))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The image could not be copied" in html and "CLARION_ALLOW_PRIVATE_FETCH" in html


@pytest.fixture
def draft(session, lists):
    alert = Alert(
        kind="petition",
        name="Free Maria",
        subject="Sign for Maria",
        fields=only_required("petition"),
        audience={"lists": [lists["alerts"].id]},
        sender_list_id=lists["alerts"].id,
    )
    session.add(alert)
    session.commit()
    return alert


def test_schedule_in_the_editors_zone_refuses_the_past_and_unschedules(
    client, session, login, draft
):
    editor = login(client, "editor")
    session.get(Editor, editor.id).timezone = "Europe/Minsk"  # UTC+3, no daylight saving
    session.commit()
    url = f"/admin/alerts/{draft.id}/schedule"
    past = (datetime.now(UTC) + timedelta(hours=3) - timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M"
    )
    submit(client, url, {"scheduled_at": past})
    page = client.get(f"/admin/alerts/{draft.id}").get_data(as_text=True)
    assert "has already passed; choose a later time" in page and "(Europe/Minsk)" in page
    session.get(Editor, editor.id).language = "ru"  # the refusal in the editor's language
    session.commit()
    submit(client, url, {"scheduled_at": past})
    page = client.get(f"/admin/alerts/{draft.id}").get_data(as_text=True)
    assert "(Europe/Minsk) уже прошло; выберите более позднее время." in page
    session.get(Editor, editor.id).language = None
    session.commit()
    submit(client, url, {"scheduled_at": "tomorrow"})
    assert "Give a date and time" in client.get(f"/admin/alerts/{draft.id}").get_data(as_text=True)
    refresh(session)
    assert session.get(Alert, draft.id).status == AlertStatus.DRAFT
    response = submit(client, url, {"scheduled_at": "2099-03-01T09:30"})
    assert response.status_code == 302
    refresh(session)
    alert = session.get(Alert, draft.id)
    assert alert.status == AlertStatus.SCHEDULED
    assert alert.scheduled_at == datetime(2099, 3, 1, 6, 30, tzinfo=UTC)
    page = client.get(f"/admin/alerts/{draft.id}").get_data(as_text=True)
    assert "2099-03-01 09:30 (Europe/Minsk)" in page
    for action in ("send", "cancel"):
        assert f'action="/admin/alerts/{draft.id}/{action}"' in page
    submit(client, f"/admin/alerts/{draft.id}/unschedule", {})
    refresh(session)
    alert = session.get(Alert, draft.id)
    assert (alert.status, alert.scheduled_at) == (AlertStatus.DRAFT, None)
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target == f"alert:{draft.id}")
    ).all()
    assert actions == ["alert.schedule", "alert.unschedule"]


def test_a_time_skipped_by_daylight_saving_is_refused(client, session, login, draft):
    editor = login(client, "editor")
    session.get(Editor, editor.id).timezone = "Europe/Vilnius"
    session.commit()
    submit(client, f"/admin/alerts/{draft.id}/schedule", {"scheduled_at": "2099-03-29T03:30"})
    page = client.get(f"/admin/alerts/{draft.id}").get_data(as_text=True)
    assert "does not exist in Europe/Vilnius" in page


def test_scheduling_needs_a_list(client, session, login, draft):
    draft.audience = {"lists": []}
    session.commit()
    login(client, "editor")
    submit(client, f"/admin/alerts/{draft.id}/schedule", {"scheduled_at": "2099-01-01T10:00"})
    assert "Choose at least one list" in client.get(f"/admin/alerts/{draft.id}").get_data(
        as_text=True
    )


def test_test_send_reaches_the_catcher_marked_and_uncounted(
    client, session, login, draft, lists, smtp_sink
):
    lists["alerts"].from_name = "Free Them All"
    lists["alerts"].from_email = "team@clarion.test"
    lists["alerts"].reply_to = "reply@clarion.test"
    session.commit()
    login(client, "editor")
    bad = submit(client, f"/admin/alerts/{draft.id}/test", {"test_to": "me@example.org, nonsense"})
    assert bad.status_code == 302
    assert "not a valid email address" in client.get(f"/admin/alerts/{draft.id}").get_data(
        as_text=True
    )
    submit(client, f"/admin/alerts/{draft.id}/test", {"test_to": "me@example.org, You@Example.org"})
    messages = smtp_sink.wait_for(2)
    assert len(messages) == 2
    assert {m.subject for m in messages} == {"[Test] Sign for Maria"}
    assert sorted(t for m in messages for t in m.envelope_to) == [
        "me@example.org",
        "you@example.org",
    ]
    headers = dict(messages[0].headers)
    assert headers["From"] == "Free Them All <team@clarion.test>"
    assert headers["Reply-To"] == "reply@clarion.test"
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert session.get(Alert, draft.id).recipients == 0
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "alert.test_send"))
    assert event.detail["to"] == ["me@example.org", "you@example.org"]


def test_live_audience_count_by_lists_tags_and_languages(client, session, login, lists):
    from clarion.models import SubscriberTag, Tag

    tag = Tag(name="minsk")
    people = [
        Subscriber(email=f"p{i}@example.org", language="be" if i % 2 else "en") for i in range(6)
    ]
    session.add_all([tag, *people])
    session.flush()
    for i, p in enumerate(people):
        status = SubscriptionStatus.SUBSCRIBED if i < 5 else SubscriptionStatus.PENDING
        session.add(Subscription(subscriber_id=p.id, list_id=lists["alerts"].id, status=status))
        session.add(Subscription(subscriber_id=p.id, list_id=lists["news"].id, status=status))
        if i < 2:
            session.add(SubscriberTag(subscriber_id=p.id, tag_id=tag.id))
    session.add(Suppression(email="p4@example.org", reason=SuppressionReason.COMPLAINT))
    session.commit()
    login(client, "viewer")

    def count(query):
        return client.get(
            f"/admin/audience-count?{query}", headers={"Accept": "application/json"}
        ).get_json()["count"]

    a, n = lists["alerts"].id, lists["news"].id
    assert count("") == 0
    assert count(f"lists={a}") == 4  # p0..p3 (p4 suppressed, p5 pending)
    assert count(f"lists={a}&lists={n}") == 4  # nobody twice
    assert count(f"lists={a}&tags={tag.id}") == 2
    assert count(f"lists={a}&languages=be") == 2
    assert count(f"lists={a}&languages=be&tags={tag.id}") == 1


def test_duplicate_and_sent_alerts_cannot_be_edited(client, session, login, draft):
    login(client, "editor")
    response = submit(client, f"/admin/alerts/{draft.id}/duplicate", {})
    copy_id = int(response.headers["Location"].split("/")[-2])
    refresh(session)
    copy = session.get(Alert, copy_id)
    assert (copy.name, copy.fields, copy.audience, copy.status) == (
        "Copy of Free Maria",
        draft.fields,
        draft.audience,
        AlertStatus.DRAFT,
    )
    session.get(Alert, draft.id).status = AlertStatus.SENT
    session.commit()
    assert client.get(f"/admin/alerts/{draft.id}/edit").status_code == 302
    changed = submit(
        client,
        f"/admin/alerts/{draft.id}/edit",
        {"subject": "Changed", **only_required("petition")},
    )
    assert changed.status_code == 302
    refresh(session)
    assert session.get(Alert, draft.id).subject == "Sign for Maria"


def test_public_archive_shows_only_sent_public_alerts_with_neutral_values(
    client, session, draft, lists
):
    draft.status = AlertStatus.SENT
    draft.archive_public = True
    draft.finished_at = datetime(2030, 5, 1, 12, tzinfo=UTC)
    hidden = Alert(
        kind="newsletter",
        name="Private",
        subject="Private one",
        fields={"body_md": "x"},
        status=AlertStatus.SENT,
    )
    unsent = Alert(
        kind="newsletter",
        name="Draft",
        subject="Unsent one",
        fields={"body_md": "x"},
        archive_public=True,
    )
    session.add_all([hidden, unsent])
    session.commit()
    anonymous = client
    index = anonymous.get("/archive").get_data(as_text=True)
    assert "Sign for Maria" in index and "Private one" not in index and "Unsent one" not in index
    page = anonymous.get(f"/archive/{draft.uid}")
    assert page.status_code == 200 and "Sign for Maria" in page.get_data(as_text=True)
    html = anonymous.get(f"/archive/{draft.uid}/html")
    assert html.headers["Content-Security-Policy"].startswith("default-src 'none'")
    body = html.get_data(as_text=True)
    assert "Hello," in body and "/unsubscribe/" not in body and "reader@example.org" not in body
    assert anonymous.get(f"/archive/{hidden.uid}").status_code == 404
    assert anonymous.get(f"/archive/{unsent.uid}").status_code == 404
    feed = anonymous.get("/archive.rss")
    assert feed.mimetype == "application/rss+xml"
    items = ET.fromstring(feed.data).findall("./channel/item")
    assert [i.findtext("title") for i in items] == ["Sign for Maria"]
    assert items[0].findtext("link").endswith(f"/archive/{draft.uid}")
    assert "Wed, 01 May 2030 12:00:00" in items[0].findtext("pubDate")
    assert "Free Maria Kalesnikava" in items[0].findtext("description")


def test_cli_creates_a_draft_from_json_and_explains_refusals(settings, session, lists, tmp_path):
    good = tmp_path / "alert.json"
    good.write_text(
        json.dumps(
            {
                "kind": "newsletter",
                "subject": "Monthly news",
                "fields": {"body_md": "Hello"},
                "audience": {"lists": ["news", lists["alerts"].id], "languages": ["en"]},
                "sender_list_id": "news",
                "archive_public": True,
            }
        )
    )
    result = CliRunner().invoke(main, ["alerts", "create", str(good)])
    assert result.exit_code == 0, result.output
    alert = session.get(Alert, int(result.output.strip()))
    assert alert.subject == "Monthly news" and alert.sender_list_id == lists["news"].id
    assert sorted(alert.audience["lists"]) == sorted([lists["news"].id, lists["alerts"].id])
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "kind": "petition",
                "fields": {"petition_url": "ftp://x"},
                "audience": {"lists": ["nope"]},
            }
        )
    )
    result = CliRunner().invoke(main, ["alerts", "create", str(bad)])
    assert result.exit_code == 1
    assert "lists: 'nope' is not known" in result.output
    bad.write_text(json.dumps({"kind": "petition", "fields": {"petition_url": "ftp://x"}}))
    result = CliRunner().invoke(main, ["alerts", "create", str(bad)])
    assert "petition_url: Enter a full web address" in result.output
    assert "petition_title: Petition title is required." in result.output
    assert "subject: Subject is required" in result.output
    bad.write_text("{not json")
    result = CliRunner().invoke(main, ["alerts", "create", str(bad)])
    assert result.exit_code == 1 and "is not valid JSON" in result.output
    bad.write_text(json.dumps({"kind": "memo"}))
    assert "kind: Choose one of" in CliRunner().invoke(main, ["alerts", "create", str(bad)]).output
