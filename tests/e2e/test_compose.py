"""In Chromium: log in, compose each kind, preview at two widths, send a test, schedule;
and the X counter in our JavaScript agrees with clarion/alerts/xcount.py on tricky strings."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clarion.alerts import kinds, xcount
from clarion.models import (
    Alert,
    AlertStatus,
    MailingList,
    Role,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tests.unit.alerts.test_alert_rendering import ALL_FIELDS

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
TRICKY = [
    "",
    "plain ascii",
    "Свабоду палітвязням! #FreeThemAll",
    "日本語のテキスト、そして中文",
    "👍🏽 👨‍👩‍👧‍👦 ❤️ 🇧🇾 ✊🏿",
    "e\u0301 vs é (NFD and NFC)",
    "see https://example.org/a?b=c&d and example.com/path, also www.test.co.uk",
    "HTTPS://EXAMPLE.ORG/UPPER http\u017f://odd.example \u017fub.example",
    "mail me@user.example.org or @handle.name, not a url: a.b",
    "tabs\tand\u3000ideographic\u2003spaces\x1cseparator\ufeffbom",
    "punctuation \u2010 \u2012 \u2013 \u2014 \u2032 \u2033 \u2026 \u00ab \u00bb",
    "ᄀ Hangul jamo and 가 syllables",
    "long " * 70,
    "K Kelvin sign.com and İstanbul.tr",
]


@pytest.fixture
def editor_account(session, monkeypatch):
    from argon2 import PasswordHasher

    from clarion import editors

    monkeypatch.setattr(
        editors, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )
    editor, _ = editors.create_editor(session, "editor@example.org", Role.EDITOR, PASSWORD)
    editor.timezone = "Europe/Minsk"
    news = MailingList(
        slug="news", name="Newsletter", from_name="Free Them All", from_email="team@clarion.test"
    )
    reader = Subscriber(email="reader@example.org", name="Reader")
    session.add_all([news, reader])
    session.flush()
    session.add(
        Subscription(subscriber_id=reader.id, list_id=news.id, status=SubscriptionStatus.SUBSCRIBED)
    )
    session.commit()
    return editor


def log_in(page, base):
    page.goto(f"{base}/admin/login")
    page.fill("#email", "editor@example.org")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def watch_for_errors(page) -> list[str]:
    """Script errors, CSP violations, failed loads (but the favicon) and any remote request."""
    problems: list[str] = []

    def console(message):
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def response(r):
        if r.status >= 400 and not r.url.endswith("/favicon.ico"):
            problems.append(f"{r.status} {r.url}")

    def request(r):
        if not r.url.startswith(("http://127.0.0.1", "data:", "about:")):
            problems.append(f"remote request {r.url}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", response)
    page.on("request", request)
    return problems


def compose(page, base, kind):
    page.goto(f"{base}/admin/alerts")
    page.click(f"#new-{kind}")
    page.fill("#subject", f"E2E {kind}")
    for name, value in ALL_FIELDS[kind].items():
        if name == "image_url":
            continue
        page.fill(f"#{name}", value)
    expect(page.locator("#audience-count")).to_have_text("0")
    page.check('input[name="lists"]')
    expect(page.locator("#audience-count")).to_have_text("1")


def test_compose_preview_test_send_and_schedule_every_kind(
    live_server, page, session, editor_account, smtp_sink
):
    problems = watch_for_errors(page)
    log_in(page, live_server)
    for kind in kinds.KINDS:
        kind = kind.value
        compose(page, live_server, kind)
        if kind == "hashtag_day":
            expected = xcount.weighted_length(kinds.suggested_post_text(ALL_FIELDS[kind]))
            assert page.locator("#x-count").inner_text() == str(expected)
            page.fill("#suggested_post", "x" * 300)
            assert page.locator("#x-count").inner_text() == str(300 + 1 + 21 + 1 + 23)
            assert page.locator("#x-count.over").count() == 1
            page.fill("#suggested_post", ALL_FIELDS[kind]["suggested_post"])
        page.click("button[value=preview]")
        page.wait_for_url(re.compile(r".*/admin/alerts/\d+/preview$"))
        assert page.locator("#preview-subject").inner_text() == f"E2E {kind}"
        frame = page.frame_locator("#preview-frame")
        assert "Hello," in frame.locator("body").inner_text()
        desktop = page.locator("#preview-frame").bounding_box()["width"]
        page.click("[data-preview-width=mobile]")
        assert page.locator("#preview-frame").bounding_box()["width"] == 375
        assert desktop > 600
        assert "Hello," in page.locator("#preview-text").inner_text()
        page.click("text=← Back to the alert")
        page.fill("#test_to", "me@example.org")
        page.click("#test-send button")
        page.wait_for_selector("text=Test sent to me@example.org")
        page.fill("#scheduled_at", "2099-05-01T10:30")
        page.click("#schedule-form button")
        page.wait_for_selector("#scheduled-at")
        assert page.locator("#scheduled-at").inner_text() == "2099-05-01 10:30 (Europe/Minsk)"
    caught = smtp_sink.wait_for(4)
    assert sorted(m.subject for m in caught) == sorted(f"[Test] E2E {k.value}" for k in kinds.KINDS)
    session.commit()
    alerts = session.scalars(select(Alert)).all()
    assert len(alerts) == 4 and {a.status for a in alerts} == {AlertStatus.SCHEDULED}
    assert problems == []


def test_javascript_and_python_count_x_posts_alike(live_server, page, editor_account):
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/alerts/new?kind=hashtag_day")
    counted = page.evaluate(
        "(texts) => texts.map((t) => window.ClarionXCount.weightedLength(t))", TRICKY
    )
    assert counted == [xcount.weighted_length(t) for t in TRICKY]
    cases = [
        {
            "suggested_post": " Free them #FreeThemAll ",
            "hashtags": "#freethemall  #Belarus",
            "share_url": "https://x.org/a ",
        },
        {
            "suggested_post": "Link https://x.org/a inside",
            "hashtags": "#A\u3000#B",
            "share_url": "https://x.org/a",
        },
        {"suggested_post": "İstanbul #İSTANBUL", "hashtags": "#istanbul", "share_url": ""},
    ]
    built = page.evaluate(
        "(cases) => cases.map((c) => window.ClarionXCount.suggestedPostText(c))", cases
    )
    stripped = [{k: v.strip() for k, v in c.items()} for c in cases]
    assert built == [kinds.suggested_post_text(c) for c in stripped]
