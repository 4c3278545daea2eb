"""The public petition page: sign once per address, confirmation, closing, opt-in, sources."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clarion.actions import signing
from clarion.db import utcnow
from clarion.models import ConsentRecord, Signature, Subscriber
from tests.helpers import csrf_from, refresh, subscription_states
from tests.integration.alertkit import make_petition


def signatures(session) -> list[Signature]:
    refresh(session)
    return list(session.scalars(select(Signature).order_by(Signature.id)))


def sign(client, slug="free-them", query="", **fields):
    page = client.get(f"/p/{slug}{query}")
    data = {"name": "Ana Example", "email": "ana@example.org", "country": "BY", **fields}
    data["csrf_token"] = csrf_from(page.get_data(as_text=True))
    data.setdefault("source", re.search(r'name="source" value="([^"]*)"', page.text).group(1))
    return client.post(f"/p/{slug}", data=data)


def test_page_shows_text_counter_goal_and_an_unticked_opt_in(client, session, lists):
    make_petition(session, target="The Minister of Justice", goal=250)
    response = client.get("/p/free-them")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<strong>freed</strong>" in html and "To: The Minister of Justice" in html
    assert 'id="count">0<' in html and 'id="goal">250<' in html
    assert '<progress id="progress" value="0" max="250">' in html
    assert "Urgent alerts" in html and "checked" not in html
    assert "no-store" in response.headers["Cache-Control"]


def test_signing_counts_once_and_records_the_source(client, session):
    make_petition(session)
    response = sign(client, query="?source=blog-sidebar", comment="Free them!")
    assert response.status_code == 200
    assert 'id="signed"' in response.text
    [signature] = signatures(session)
    assert (signature.email, signature.name, signature.country) == (
        "ana@example.org",
        "Ana Example",
        "BY",
    )
    assert signature.source == "blog-sidebar" and signature.comment == "Free them!"
    assert signature.confirmed_at is not None and signature.alert_id is None
    assert client.get("/p/free-them/count.json").get_json()["count"] == 1


def test_signing_twice_is_told_kindly_and_duplicates_nothing(client, session):
    make_petition(session)
    first = sign(client)
    again = sign(client, email="  ANA@example.ORG ", name="Ana Again")
    assert again.status_code == 200
    assert "counts once" in again.text
    # What a stranger sees does not reveal that this address had signed already.
    assert re.sub(r'value="[^"]*"', "", again.text) == re.sub(r'value="[^"]*"', "", first.text)
    [signature] = signatures(session)
    assert signature.name == "Ana Example"
    assert client.get("/p/free-them/count.json").get_json()["count"] == 1


def test_a_bad_form_is_explained_and_keeps_what_was_typed(client, session):
    make_petition(session)
    response = sign(client, email="not-an-address", name="Ana Typed", comment="My words")
    assert response.status_code == 422
    assert 'id="email-error"' in response.text and "not a valid email" in response.text
    assert 'value="Ana Typed"' in response.text and "My words" in response.text
    response = sign(client, name="", country="XX")
    assert 'id="name-error"' in response.text and 'id="country-error"' in response.text
    assert signatures(session) == []


def test_country_and_comment_are_optional(client, session):
    make_petition(session)
    assert 'id="signed"' in sign(client, country="").text
    assert signatures(session)[0].country == ""


def test_the_honeypot_pretends_and_stores_nothing(client, session):
    make_petition(session)
    response = sign(client, website="http://spam.example")
    assert response.status_code == 200 and 'id="signed"' in response.text
    assert signatures(session) == []


@pytest.mark.parametrize(
    "fields",
    [{"is_open": False}, {"deadline": utcnow() - timedelta(minutes=1)}],
    ids=["closed-by-editor", "deadline-passed"],
)
def test_a_closed_petition_takes_no_signature(client, session, fields):
    make_petition(session, **fields)
    page = client.get("/p/free-them")
    assert 'id="closed"' in page.text and 'id="sign-form"' not in page.text
    token = csrf_from(client.get("/share/mastodon").text)  # any page with a form
    response = client.post(
        "/p/free-them", data={"name": "A", "email": "a@example.org", "csrf_token": token}
    )
    assert response.status_code == 409
    assert signatures(session) == []


def test_before_the_deadline_signing_works(client, session):
    make_petition(session, deadline=utcnow() + timedelta(hours=1))
    assert 'id="signed"' in sign(client).text


def test_opting_in_goes_through_double_opt_in_with_the_source(client, session, lists):
    make_petition(session)
    response = sign(client, query="?source=tg-channel", lists=[str(lists["alerts"].id)])
    assert 'id="signed"' in response.text and "confirmation" in response.text
    assert subscription_states(session, "ana@example.org") == {"alerts": "pending"}
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    assert reader.source == "tg-channel"
    consent = session.scalar(select(ConsentRecord).where(ConsentRecord.subscriber_id == reader.id))
    assert (consent.form, consent.source, consent.confirmed_at) == ("petition", "tg-channel", None)


def test_signing_without_ticking_joins_nothing(client, session, lists):
    make_petition(session)
    sign(client)
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_a_private_list_cannot_be_joined_from_the_form(client, session, lists):
    make_petition(session)
    response = sign(client, lists=[str(lists["staff"].id)])
    assert response.status_code == 422 and 'id="lists-error"' in response.text
    assert signatures(session) == []  # nothing half-saved


def test_bad_source_codes_are_dropped(client, session):
    make_petition(session)
    sign(client, source="<script>alert(1)</script>")
    assert signatures(session)[0].source is None


def test_thanks_page_share_links_each_carry_their_own_source(client, session, settings):
    make_petition(session, title="Free Ales & Maria")
    html = sign(client).text
    base = re.escape(settings.base_url.replace(":", "%3A").replace("/", "%2F"))
    for network, host in [
        ("x", "https://x.com/intent/post"),
        ("bluesky", "https://bsky.app/intent/compose"),
        ("mastodon", f"{settings.base_url}/share/mastodon"),
        ("facebook", "https://www.facebook.com/sharer/sharer.php"),
        ("telegram", "https://t.me/share/url"),
    ]:
        href = re.search(rf'href="([^"]+)"[^>]*id="share-{network}"', html).group(1)
        assert href.startswith(host), href
        assert re.search(rf"{base}%2Fp%2Ffree-them%3Fsource%3Dshare-{network}", href), href
    copy = re.search(r'id="copy-url" type="text" readonly value="([^"]+)"', html).group(1)
    assert copy == f"{settings.base_url}/p/free-them?source=share-copy"


def test_confirmation_mode_counts_a_signature_only_once_confirmed(
    client, session, worker, smtp_sink
):
    make_petition(session, require_confirmation=True)
    response = sign(client)
    assert 'id="check-inbox"' in response.text
    assert client.get("/p/free-them/count.json").get_json()["count"] == 0
    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["ana@example.org"]
    assert mail.subject == "Please confirm your signature: Free them all"
    link = re.search(r"http://127\.0\.0\.1:\d+(/p/free-them/confirm/\S+)", mail.text).group(1)
    # Opening the link (as a scanner would) counts nothing; the press does.
    page = client.get(link)
    assert signatures(session)[0].confirmed_at is None
    assert client.post(link, data={"csrf_token": csrf_from(page.text)}).status_code == 200
    assert signatures(session)[0].confirmed_at is not None
    assert client.get("/p/free-them/count.json").get_json()["count"] == 1
    # The link can be opened again; it changes nothing more.
    assert 'id="already-confirmed"' in client.get(link).text


@pytest.mark.parametrize(
    "closing",
    [{"is_open": False}, {"deadline": utcnow() - timedelta(minutes=1)}],
    ids=["closed-by-editor", "deadline-passed"],
)
def test_a_confirmation_after_the_petition_closed_does_not_count(client, session, closing):
    petition = make_petition(
        session, require_confirmation=True, deadline=utcnow() + timedelta(hours=1)
    )
    # Signed through the domain: no confirmation mail for a worker to send meanwhile.
    outcome = signing.sign(session, petition, signing.SignRequest("Ana", "ana@example.org"))
    session.commit()
    assert outcome.status == signing.SignStatus.CHECK_INBOX
    [signature] = signatures(session)
    link = f"/p/free-them/confirm/{signing.confirm_token(signature)}"
    page = client.get(link)
    for name, value in closing.items():
        setattr(petition, name, value)
    session.commit()
    response = client.post(link, data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 404
    assert "closed before the signature was confirmed" in response.text
    assert signatures(session)[0].confirmed_at is None
    assert client.get("/p/free-them/count.json").get_json()["count"] == 0


def test_signing_again_unconfirmed_asks_again_without_duplicating(client, session):
    make_petition(session, require_confirmation=True)
    sign(client)
    response = sign(client)
    assert 'id="check-inbox"' in response.text
    assert len(signatures(session)) == 1


def test_a_forged_confirmation_link_confirms_nothing(client, session):
    make_petition(session, require_confirmation=True)
    sign(client)
    assert client.get("/p/free-them/confirm/forged.token.here").status_code == 400
    assert signatures(session)[0].confirmed_at is None


def test_the_goal_is_raised_at_milestones_when_enabled(client, session):
    make_petition(session, goal=1, raise_goal=True)
    sign(client)
    assert client.get("/p/free-them/count.json").get_json() == {
        "count": 1,
        "goal": 2,
        "percent": 50,
        "open": True,
    }


def test_the_counter_json_and_embed_are_for_any_site(client, session, settings):
    make_petition(session)
    response = client.get("/p/free-them/count.json")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    embed = client.get("/p/free-them/embed")
    assert embed.status_code == 200 and 'id="count">0<' in embed.text
    assert "frame-ancestors *" in embed.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in embed.headers
    assert f"{settings.base_url}/p/free-them?source=embed" in embed.text
    # Every other page still refuses to be framed.
    page = client.get("/p/free-them")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_the_embed_may_be_limited_to_the_campaign_sites(session, settings, monkeypatch):
    from dataclasses import replace

    from webapp import create_app

    limited = replace(settings, embed_origins=("https://blog.example.org",))
    client = create_app(limited, TESTING=True).test_client()
    make_petition(session)
    csp = client.get("/p/free-them/embed").headers["Content-Security-Policy"]
    assert "frame-ancestors https://blog.example.org" in csp


def test_unknown_petition_is_404(client, session):
    assert client.get("/p/nothing-here").status_code == 404
