"""Every public page and every mail a reader gets, in each of the five languages: the right
`lang`, a phrase of that language, and none of the English sentences."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from werkzeug.exceptions import Gone

from clarion import i18n, tokens
from clarion.actions import petition_notices, signing
from clarion.alerts.freeze import freeze_content
from clarion.alerts.rendering import AlertContent, SiteContext
from clarion.audience import disclosure, notices, subscribers
from clarion.bounces.refusals import BatchRefusals
from clarion.db import utcnow
from clarion.delivery.messages import AlertFrame, Recipient, Skeleton
from clarion.errors import RateLimited
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    ConsentRecord,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tests.helpers import csrf_from
from tests.integration.alertkit import make_petition

LANGUAGES = ("en", "be", "ru", "uk", "pl")
# Sentences that must not reach a reader who chose another language.
ENGLISH = (
    "Please check the fields marked below.",
    "Check your inbox",
    "Confirm your subscription",
    "Yes, subscribe me",
    "You are subscribed",
    "Your preferences",
    "Leave every list",
    "We will not send you these mails again",
    "Sign the petition",
    "Prefer not to say",
    "Email address",
    "signatures",
    "Thank you",
    "Post on X",
    "Nothing published yet",
    "This link is not valid.",
    "Not found",
    "Something went wrong",
    "Too many",
    "This page is no longer here",
    "Hello",
    "You receive this from",
    "If you did not ask for this",
    "Read the post",
    "Post this:",
    "Friday",
    "June",
)


def assert_speaks(html: str, lang: str, *phrases: str) -> None:
    """`html` is in `lang`: its lang attribute, the translation of each phrase, no English."""
    assert re.search(rf'<html lang="{lang}"', html), html[:200]
    for phrase in phrases:
        translated = i18n.translations(lang).gettext(phrase)
        if lang != "en":
            assert translated != phrase, f"{phrase!r} has no {lang} translation"
        fixed = translated.split("%(")[0]  # the words before any placeholder
        assert fixed in html, f"{fixed!r} not in the {lang} page"
    if lang != "en":
        found = [sentence for sentence in ENGLISH if sentence in html]
        assert found == [], f"English in the {lang} page: {found}"


@pytest.fixture
def reader(session, lists):
    """A confirmed reader; the test gives them a language."""
    person = Subscriber(email="ana@example.org", name="Ana", language="en")
    session.add(person)
    session.flush()
    session.add(
        Subscription(
            subscriber_id=person.id,
            list_id=lists["alerts"].id,
            status=SubscriptionStatus.SUBSCRIBED,
        )
    )
    session.commit()
    return person


@pytest.fixture
def error_app(settings):
    """The app with routes that fail as the rare public errors do, handled as in production."""
    from webapp import create_app

    app = create_app(settings, TESTING=True, PROPAGATE_EXCEPTIONS=False)

    def gone():
        raise Gone()

    def busy():
        raise RateLimited(
            i18n.gettext("Too many requests from your network. Please try again in a while.")
        )

    def broken():
        raise RuntimeError("a bug")

    app.add_url_rule("/test-gone", view_func=gone)
    app.add_url_rule("/test-busy", view_func=busy)
    app.add_url_rule("/test-broken", view_func=broken)
    return app


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_public_page_speaks_the_readers_language(
    client, session, settings, lists, reader, error_app, lang
):
    reader.language = lang
    petition = make_petition(
        session, target="The Minister", deadline=datetime(2031, 6, 5, 18, tzinfo=UTC)
    )
    published = Alert(
        kind=AlertKind.NEWSLETTER,
        name="Day 1000",
        subject="Day 1000",
        fields={"body_md": "They must be **freed**."},
        audience={"lists": [lists["alerts"].id], "languages": [lang]},
        status=AlertStatus.SENT,
        archive_public=True,
        finished_at=datetime(2030, 5, 1, 12, tzinfo=UTC),
    )
    session.add(published)
    session.commit()
    q = f"?lang={lang}"

    # Sign-up: the form, bad input, then "check your inbox" in the language chosen on the form.
    assert_speaks(client.get(f"/subscribe{q}").get_data(as_text=True), lang, "Subscribe")
    bad = client.post(f"/subscribe{q}", data={"email": "", "language": lang})
    assert bad.status_code == 422
    assert_speaks(
        bad.get_data(as_text=True),
        lang,
        "Please check the fields marked below.",
        "Please enter your email address.",
        "Please tick at least one list.",
    )
    done = client.post(
        "/subscribe",
        data={"email": "new@example.org", "language": lang, "lists": [str(lists["news"].id)]},
    )
    assert_speaks(done.get_data(as_text=True), lang, "Check your inbox")
    session.commit()
    newcomer = session.query(Subscriber).filter_by(email="new@example.org").one()
    assert newcomer.language == lang

    # Confirming, with no ?lang=: the language comes from the sign-up itself.
    consent = session.query(ConsentRecord).filter_by(subscriber_id=newcomer.id).one()
    token = subscribers.confirm_token(consent)
    session.commit()
    page = client.get(f"/confirm/{token}").get_data(as_text=True)
    assert_speaks(page, lang, "Confirm your subscription", "Yes, subscribe me")
    confirmed = client.post(f"/confirm/{token}", data={"csrf_token": csrf_from(page)})
    assert_speaks(confirmed.get_data(as_text=True), lang, "You are subscribed")

    # The reader's own pages, reached by their tokens, with no ?lang= either.
    prefs = tokens.preferences_token(reader.uid)
    page = client.get(f"/preferences/{prefs}").get_data(as_text=True)
    assert_speaks(page, lang, "Your preferences", "Leave every list", "Mail me my data")
    assert_speaks(
        client.get(f"/preferences/{prefs}/erase").get_data(as_text=True), lang, "Yes, erase me"
    )
    leave = tokens.unsubscribe_token(reader.uid)
    assert_speaks(client.get(f"/unsubscribe/{leave}").get_data(as_text=True), lang, "Unsubscribe")
    gone = client.post(f"/unsubscribe/{leave}", data={"List-Unsubscribe": "One-Click"})
    assert_speaks(gone.get_data(as_text=True), lang, "You are unsubscribed")

    # The petition, by the browser's Accept-Language; signing; the confirmation page; the embed.
    browser = {"Accept-Language": f"{lang};q=0.9,de;q=0.5"}
    page = client.get(f"/p/{petition.slug}", headers=browser).get_data(as_text=True)
    assert_speaks(page, lang, "Sign the petition", "Prefer not to say", "To: %(target)s")
    countries = dict(i18n.country_names(lang))
    assert f">{countries['BY']}</option>" in page
    signed = client.post(
        f"/p/{petition.slug}{q}",
        data={"csrf_token": csrf_from(page), "name": "Ana", "email": "sig@example.org"},
    )
    assert_speaks(signed.get_data(as_text=True), lang, "Thank you for signing", "Post on X")
    session.commit()  # a fresh snapshot: the web request signed in its own transaction
    signature = session.query(Signature).filter_by(email="sig@example.org").one()
    assert signature.language == lang
    confirm_path = f"/p/{petition.slug}/confirm/{signing.confirm_token(signature)}"
    assert_speaks(client.get(confirm_path).get_data(as_text=True), lang, "Confirm your signature")
    embed = client.get(f"/p/{petition.slug}/embed{q}").get_data(as_text=True)
    assert_speaks(embed, lang, "Sign")

    # The archive and the Mastodon hand-off.
    assert_speaks(client.get(f"/archive{q}").get_data(as_text=True), lang, "RSS feed")
    page = client.get(f"/archive/{published.uid}{q}").get_data(as_text=True)
    assert_speaks(page, lang, "Plain text")
    feed = client.get(f"/archive.rss{q}").get_data(as_text=True)
    assert f"<language>{lang}</language>" in feed
    assert i18n.gettext("Alerts sent by %(site)s", lang, site=settings.site_name) in feed
    frame = client.get(f"/archive/{published.uid}/html").get_data(as_text=True)
    assert f'lang="{lang}"' in frame
    share = client.get(f"/share/mastodon{q}&text=x").get_data(as_text=True)
    assert_speaks(share, lang, "Continue to my server")

    # Public error pages: 400, 404, 410, 429, 500.
    bad_link = client.get(f"/confirm/not-a-token{q}")
    assert bad_link.status_code == 400
    assert_speaks(bad_link.get_data(as_text=True), lang, "This link does not work")
    errors = error_app.test_client()
    for path, status, phrase in [
        ("/nowhere", 404, "There is nothing at this address. Please check the link."),
        ("/test-gone", 410, "This page is no longer here."),
        ("/test-busy", 429, "Too many attempts"),
        ("/test-broken", 500, "Something went wrong"),
    ]:
        response = errors.get(path, headers={"Accept-Language": lang})
        assert response.status_code == status
        assert_speaks(response.get_data(as_text=True), lang, phrase)

    # Erasing comes last: the reader is gone after it.
    page = client.get(f"/preferences/{prefs}/erase").get_data(as_text=True)
    erased = client.post(f"/preferences/{prefs}/erase", data={"csrf_token": csrf_from(page)})
    assert_speaks(erased.get_data(as_text=True), lang, "You are erased")


def test_the_petition_counter_writes_numbers_and_plurals_as_the_reader_does(client, session):
    petition = make_petition(session, goal=10000)
    session.add_all(
        Signature(
            petition_id=petition.id,
            email=f"s{i}@example.org",
            name="S",
            created_at=utcnow(),
            confirmed_at=utcnow(),
        )
        for i in range(2)
    )
    session.commit()
    html = client.get("/p/free-them?lang=ru").get_data(as_text=True)
    assert re.search(
        r'<strong id="count">2</strong>\s*подписи\s*из <span id="goal">10\xa0000</span>', html
    )
    html = client.get("/p/free-them?lang=pl").get_data(as_text=True)
    assert re.search(r"2</strong>\s*podpisy\s*z", html)
    html = client.get("/p/free-them").get_data(as_text=True)
    assert re.search(r'2</strong>\s*signatures\s*of <span id="goal">10,000</span>', html)


def test_an_unknown_language_asked_for_falls_back_quietly(client, reader, lists):
    page = client.get("/subscribe?lang=xx", headers={"Accept-Language": "zz, uk;q=0.5"})
    assert page.status_code == 200
    assert '<html lang="uk"' in page.get_data(as_text=True)
    page = client.get("/subscribe?lang=../../etc", headers={"Accept-Language": "q=;;,"})
    assert page.status_code == 200 and '<html lang="en"' in page.get_data(as_text=True)


def test_the_switcher_links_this_page_in_each_language(client, lists):
    html = client.get("/subscribe?source=blog&lang=be").get_data(as_text=True)
    for code in ("en", "ru", "uk", "pl"):
        assert f'href="/subscribe?source=blog&amp;lang={code}"' in html
    assert '<strong lang="be" aria-current="true">Беларуская</strong>' in html


def test_a_reader_whose_language_was_removed_gets_the_default(
    client, session, reader, monkeypatch, settings
):
    from clarion.config import reset_settings

    reader.language = "uk"
    session.commit()
    monkeypatch.setenv("CLARION_LANGUAGES", "be=Беларуская,en=English")
    reset_settings()
    from webapp import create_app

    app = create_app(TESTING=True)
    page = app.test_client().get(f"/preferences/{tokens.preferences_token(reader.uid)}")
    assert page.status_code == 200
    assert_speaks(page.get_data(as_text=True), "be", "Your preferences")


# --- Mails ----------------------------------------------------------------------------------


def _only_mail(smtp_sink):
    [mail] = smtp_sink.wait_for(1)
    smtp_sink.clear()
    return mail.message


def assert_mail_speaks(msg, lang: str, html_phrases=(), text_phrases=()) -> None:
    """The HTML part, the text part and the subject in `lang`; Content-Language says so."""
    assert msg["Content-Language"] == lang
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content() + msg["Subject"]
    assert_speaks(html, lang, *html_phrases)
    for phrase in text_phrases:
        translated = i18n.translations(lang).gettext(phrase)
        assert lang == "en" or translated != phrase
        assert translated.split("%(")[0] in text, (translated, text)
    if lang != "en":
        assert [s for s in ENGLISH if s in text] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_transactional_mail_speaks_the_readers_language(
    session, lists, reader, smtp_sink, lang
):
    outcome = subscribers.subscribe(
        session,
        subscribers.SubscribeRequest(
            "new@example.org", [lists["news"].id], name="Ola", language=lang
        ),
    )
    session.commit()
    assert notices.send_confirmation(session, outcome.consent_id, BatchRefusals())
    session.commit()  # end each read before the next write (SQLite)
    assert_mail_speaks(
        _only_mail(smtp_sink),
        lang,
        ("Confirm your subscription", "Yes, subscribe me", "Hello %(name)s,"),
        ("To confirm, open this link:", "Please confirm your subscription to %(site)s"),
    )

    petition = make_petition(session, require_confirmation=True)
    signature = Signature(
        petition_id=petition.id,
        email="sig@example.org",
        name="Ola",
        language=lang,
        created_at=utcnow(),
        mail_due_at=utcnow(),  # its confirmation mail owed, as signing leaves it
    )
    session.add(signature)
    session.commit()
    assert petition_notices.send_signature_confirmation(session, signature.id, BatchRefusals())
    session.commit()
    assert_mail_speaks(
        _only_mail(smtp_sink),
        lang,
        ("Confirm your signature", "Yes, count my signature"),
        ("To confirm, open this link:", "Please confirm your signature: %(title)s"),
    )

    reader.language = lang
    session.commit()
    assert disclosure.send_data_link(session, reader.id, BatchRefusals())
    assert_mail_speaks(
        _only_mail(smtp_sink),
        lang,
        ("Your data", "Download my data (JSON)"),
        ("Download it (a JSON file) from this link:", "Your data held by %(site)s"),
    )


ALERTS = {
    AlertKind.NEWSLETTER: {"body_md": "They must be **freed**."},
    AlertKind.NEW_POST: {"post_url": "https://blog.example.org/p", "title": "Day 1000"},
    AlertKind.PETITION: {
        "petition_url": "https://news.example.org/p/free",
        "petition_title": "Free them",
        "target": "The Minister",
        "why": "Because.",
    },
    AlertKind.HASHTAG_DAY: {
        "hashtags": "#FreeThem",
        "action_date": "2031-06-06",
        "action_time": "18:00",
        "action_timezone": "Europe/Minsk",
        "suggested_post": "Free them all #FreeThem",
    },
}
ALERT_PHRASES = {
    AlertKind.NEWSLETTER: (),
    AlertKind.NEW_POST: ("Read the post",),
    AlertKind.PETITION: ("Sign the petition", "To: %(target)s"),
    AlertKind.HASHTAG_DAY: ("Post this:", "Post on %(network)s"),
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", list(ALERTS))
def test_every_alert_layout_speaks_the_alerts_language(settings, kind, lang):
    frozen = freeze_content(
        AlertContent(kind.value, "Day 1000", ALERTS[kind]),
        SiteContext(settings.site_name, settings.base_url, "Urgent alerts"),
        lang=lang,
    )
    meta = {
        "from": settings.mail_from,
        "reply_to": None,
        "list": {"id": 1, "slug": "alerts", "name": "Urgent alerts"},
        "language": lang,
    }
    frame = AlertFrame(
        alert_id=1,
        alert_uid="Uid1",
        subject=frozen.subject,
        html=frozen.html,
        text=frozen.text,
        meta=meta,
    )
    built = Skeleton(frame, settings).build(Recipient(9, "subuid9", "ana@example.org", "Ana"))
    msg = email.message_from_bytes(built.data, policy=email.policy.default)
    assert msg["Content-Language"] == lang
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    greeting = i18n.gettext("Hello %(name)s,", lang, name="Ana")
    assert text.startswith(greeting) and greeting in html
    footer = i18n.gettext(
        "You receive this from %(site)s (%(list)s) because you subscribed.",
        lang,
        site=settings.site_name,
        list="Urgent alerts",
    )
    assert footer in text and footer in html.replace("\n", " ")
    assert_speaks(html, lang, "Unsubscribe", *ALERT_PHRASES[kind])
    if kind == AlertKind.HASHTAG_DAY:
        when = i18n.format_moment(datetime(2031, 6, 6, 18, tzinfo=ZoneInfo("Europe/Minsk")), lang)
        assert when in html and when in text
    if lang != "en":
        assert [s for s in ENGLISH if s in text] == []


def test_a_reader_who_picks_belarusian_gets_it_all_the_way(
    client, session, lists, worker, smtp_sink, settings
):
    """The issue's "done when", end to end: form, the worker's mail, the confirm page."""
    page = client.get("/subscribe", headers={"Accept-Language": "be-BY,be;q=0.9,en;q=0.5"})
    assert 'value="be" selected' in page.get_data(as_text=True)  # preselected from the browser
    client.post(
        "/subscribe",
        data={"email": "ales@example.org", "language": "be", "lists": [str(lists["news"].id)]},
    )
    msg = _only_mail(smtp_sink)
    assert_mail_speaks(msg, "be", ("Confirm your subscription",), ("To confirm, open this link:",))
    link = re.search(r"http\S+/confirm/\S+", msg.get_body(("plain",)).get_content()).group(0)
    path = link.removeprefix(settings.base_url)
    page = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert_speaks(page, "be", "Yes, subscribe me")  # the reader's choice beats the browser's
