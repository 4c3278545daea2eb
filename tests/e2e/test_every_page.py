"""Every admin page (the route walk's list) and every public page, in Chromium on a phone and on
a desktop: no sideways scrolling and no axe-core violation; the admin navigation is one row at
1280 px and a "Menu" at 375 px."""

from __future__ import annotations

import io
import smtplib
from email.message import EmailMessage

import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import expect

from clarion import jobs, tokens
from clarion.actions import signing
from clarion.alerts import identity
from clarion.audience import subscribers
from clarion.db import utcnow
from clarion.delivery import mailcatcher
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Bounce,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Feed,
    Job,
    Segment,
    Signature,
    Tag,
    WebhookEndpoint,
)
from clarion.series import editing as series_editing
from clarion.tracking import readers
from tests.integration.alertkit import make_petition

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 800}
# Not pages: data, downloads, mail bodies shown inside a page's frame, and leaving.
NOT_PAGES = {
    "admin.alert_preview_html",  # the mail itself, framed by the preview page
    "admin.outbox_html",  # the same, in the outbox
    "admin.composer_frame",  # the composer's live preview, framed by the alert form
    "admin.logout",
    "admin.petition_export_csv",  # downloads
    "admin.import_rejected",
    "admin.export_download",
}


@pytest.fixture
def world(session, settings, lists, subscribed, smtp_sink, make_editor):
    """One of each thing an admin page shows, named by the URL arguments that point at it, and
    a campaign identity with a logo, a blog, a privacy policy and a long postal line."""
    now = utcnow()
    owner, _ = make_editor("owner", "boss@example.org")
    logo = io.BytesIO()
    Image.new("RGB", (900, 300), (11, 83, 148)).save(logo, "PNG")
    logo.seek(0)
    identity_form = {
        "name": "Committee for the Release of Political Prisoners",
        "accent": "#0b5394",
        "blog_url": "https://blog.example.org/",
        "privacy_url": "https://blog.example.org/privacy",
        "postal": "Committee for the Release, PO Box 17, 01001 Vilnius, Lithuania",
        "sender_name": "The Committee",
        "sender_email": "news@example.org",
    }
    identity.save(session, owner, identity_form, io.BytesIO(logo.getvalue()))
    # Made directly: registering one through the domain resolves the (made-up) host.
    endpoint = WebhookEndpoint(
        url="https://hooks.example.org/clarion", events=["subscriber.confirmed"], secret="sealed"
    )
    session.add(endpoint)
    session.flush()
    alert = Alert(
        kind=AlertKind.NEWSLETTER,
        name="Day 1000",
        subject="1,000 days: write to Ales",
        fields={"body_md": "Ales has been held for **1,000 days**."},
        audience={"lists": [lists["alerts"].id]},
        status=AlertStatus.DRAFT,
        stay_days=14,  # a "stay subscribed?" mail: its page shows the counts, its stay page
    )
    session.add(alert)
    session.flush()
    delivery = Delivery(
        alert_id=alert.id, subscriber_id=subscribed.id, status=DeliveryStatus.SENT, sent_at=now
    )
    session.add(delivery)
    session.flush()
    session.add(
        Bounce(
            source="smtp",
            delivery_id=delivery.id,
            alert_id=alert.id,
            subscriber_id=subscribed.id,
            classification="hard",
            evidence=b"550 5.1.1 no such user",
        )
    )
    petition = make_petition(session, slug="free-ales", title="Free Ales", goal=500)
    session.add(
        Signature(petition_id=petition.id, email="s@example.org", name="S", confirmed_at=now)
    )
    session.add_all([Tag(name="minsk"), Feed(url="https://blog.example.org/feed", name="Blog")])
    segment = Segment(
        name="Not yet signed",
        conditions={"all": [
            {"type": "subscribed", "list": lists["alerts"].id},
            {"not": {"type": "signed", "petition": petition.id}},
            {"any": [{"type": "received", "alert": alert.id},
                     {"type": "language", "languages": ["en"]}]},
        ]},
    )  # fmt: skip
    session.add(segment)
    upload = settings.instance_dir / "a.csv"
    upload.write_text("email\na@example.org\n")
    job = Job(
        kind="import", status=jobs.MAPPING, options={"file_name": "a.csv"}, input_path=str(upload)
    )
    session.add(job)
    goal = {"type": "signed", "petition": petition.id}
    values = series_editing.SeriesValues("Welcome journey", lists["alerts"].id, "joined", goal=goal)
    series = series_editing.create(session, owner, values)
    series_editing.add_step(session, owner, series, series_editing.StepValues(delay_hours=24))
    session.commit()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "c@example.org", "r@example.org", "Hi"
    message.set_content("Hello")
    with smtplib.SMTP("127.0.0.1", smtp_sink.port) as smtp:
        smtp.send_message(message)
    smtp_sink.wait_for(1)
    return {
        "alert_id": alert.id,
        "delivery_id": delivery.id,
        "endpoint_id": endpoint.id,
        "bounce_id": session.scalar(Bounce.__table__.select().with_only_columns(Bounce.id)),
        "feed_id": session.scalar(Feed.__table__.select().with_only_columns(Feed.id)),
        "list_id": lists["alerts"].id,
        "petition_id": petition.id,
        "segment_id": segment.id,
        "series_id": series.id,
        "subscriber_id": subscribed.id,
        "uid": job.uid,
        "key": mailcatcher.list_messages(settings.outbox_dir)[0].key,
    }


def _admin_paths(app, world: dict) -> list[str]:
    paths = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("admin.") or "GET" not in rule.methods:
            continue
        if rule.endpoint in NOT_PAGES:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", str(world[name])).replace(
                f"<{name}>", str(world[name])
            )
        paths.append(path)
    return paths


def _public_paths(session, world: dict, subscribed, lists) -> list[str]:
    prefs = tokens.preferences_token(subscribed.uid)
    pending = subscribers.subscribe(
        session, subscribers.SubscribeRequest("new@example.org", [lists["news"].id])
    )
    session.commit()
    confirm = subscribers.confirm_token(session.get(ConsentRecord, pending.consent_id))
    signature = session.scalar(Signature.__table__.select().with_only_columns(Signature.uid))
    unsubscribe = tokens.unsubscribe_token(subscribed.uid, [lists["alerts"].id])
    sign_token = tokens.sign_timed(tokens.SIGNATURE_CONFIRM, signature)
    stay = readers.stay_token(tokens.delivery_tokens(tokens.CLICK).encode(world["delivery_id"]))
    assert signing  # the confirmation page reads what signing.confirm_token makes
    return [
        "/",
        "/subscribe",
        "/archive",
        f"/confirm/{confirm}",
        "/p/free-ales",
        f"/p/free-ales/confirm/{sign_token}",
        "/p/free-ales/embed",
        f"/preferences/{prefs}",
        f"/preferences/{prefs}/erase",
        f"/unsubscribe/{unsubscribe}",
        f"/stay?t={stay}",
        "/share/mastodon?text=Sign&url=http%3A%2F%2F127.0.0.1%2Fp%2Ffree-ales",
    ]


def _check(page, axe: Axe, url: str, viewport: dict) -> list[str]:
    """What is wrong with the page at this width: sideways scroll, axe violations."""
    page.set_viewport_size(viewport)
    response = page.goto(url)
    if response is None or "text/html" not in response.headers.get("content-type", ""):
        return []
    problems = []
    if response.status != 200:
        problems.append(f"{url}: HTTP {response.status}")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        problems.append(f"{url} at {viewport['width']} px scrolls sideways by {overflow} px")
    for violation in axe.run(page).response["violations"]:
        targets = [n["target"] for n in violation["nodes"]][:3]
        problems.append(f"{url} at {viewport['width']} px: {violation['id']} {targets}")
    return problems


def test_no_page_scrolls_sideways_or_breaks_an_axe_rule(
    app, page, live_server, session, login_page, world, subscribed, lists
):
    axe = Axe()
    paths = _public_paths(session, world, subscribed, lists)
    problems = []
    for path in paths:
        for viewport in (PHONE, DESKTOP):
            problems += _check(page, axe, f"{live_server}{path}", viewport)
    login_page(page, live_server)
    for path in _admin_paths(app, world):
        for viewport in (PHONE, DESKTOP):
            problems += _check(page, axe, f"{live_server}{path}", viewport)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("lang", ["en", "ru", "be"])
def test_the_admin_navigation_is_one_row_on_a_desktop_and_a_menu_on_a_phone(
    page, live_server, login_page, lang
):
    login_page(page, live_server)
    if lang != "en":  # the editor's own choice, as under Account
        page.goto(f"{live_server}/admin/account")
        page.select_option("#language-choice", lang)
        page.locator("#language form button[type=submit]").click()
        page.wait_for_load_state()
        assert page.get_attribute("html", "lang") == lang
    for width in (1200, DESKTOP["width"]):  # 1200 px: the narrowest one-row width
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live_server}/admin/")
        boxes = page.evaluate(
            "() => [...document.querySelectorAll('.admin-nav > ul > li')].map(li => {"
            " const r = li.getBoundingClientRect(); return [r.top, r.bottom, r.right]; })"
        )
        # Every entry on one row: each overlaps every other vertically (none wrapped below),
        # the last one within the screen, and the page does not scroll sideways.
        assert len(boxes) >= 8
        assert max(top for top, _, _ in boxes) < min(bottom for _, bottom, _ in boxes), boxes
        assert max(right for _, _, right in boxes) <= width, (lang, width, boxes)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow == 0, (lang, width, overflow)
        assert not page.is_visible(".nav-narrow summary")
    if lang != "en":
        return
    page.click(".admin-nav .nav-wide summary:text('Subscribers')")
    page.click(".admin-nav a:text('Lists')")
    page.wait_for_url("**/admin/lists")
    page.click(".admin-nav .nav-wide summary:text('Alerts')")
    page.click(".admin-nav .nav-wide a:text('Series')")
    page.wait_for_url("**/admin/series")
    # Log out is under Account, and on the screen once it opens.
    page.click(".admin-nav .nav-wide summary:text('Account')")
    logout = page.locator(".nav-wide button:text('Log out')")
    expect(logout).to_be_visible()
    assert logout.bounding_box()["x"] + logout.bounding_box()["width"] <= DESKTOP["width"]

    for narrow in (1199, PHONE["width"]):  # a "Menu" below 1200 px
        page.set_viewport_size({"width": narrow, "height": 800})
        expect(page.locator(".nav-wide")).to_be_hidden()
        expect(page.locator(".nav-narrow summary")).to_be_visible()
    page.set_viewport_size(PHONE)
    expect(page.locator(".nav-narrow a:text('Petitions')")).to_be_hidden()
    page.click(".nav-narrow summary")
    page.click(".nav-narrow a:text('Petitions')")
    page.wait_for_url("**/admin/petitions")


@pytest.fixture
def login_page(make_editor):
    """Log a browser page in as an owner (who sees every entry of the navigation)."""

    def log_in(page, live_server):
        editor, password = make_editor("owner")
        page.goto(f"{live_server}/admin/login")
        page.fill("#email", editor.email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/admin/")

    return log_in
