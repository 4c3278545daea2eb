"""The public sign-up: own form, cross-site sidebar form, JSON; bad input; anti-bombing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clarion.errors import Suppressed
from clarion.models import ConsentRecord, Subscriber, Suppression, SuppressionReason
from tests.helpers import paragraphs, refresh, subscription_states


def count(session, model) -> int:
    refresh(session)
    return session.scalar(select(func.count()).select_from(model))


def test_form_offers_public_lists_unticked(client, lists):
    html = client.get("/subscribe").get_data(as_text=True)
    assert "Urgent alerts" in html and "Newsletter" in html
    assert "Staff only" not in html
    assert "checked" not in html
    assert 'name="website"' in html  # the honeypot


def test_sign_up_records_pending_subscription_and_consent(client, session, lists):
    response = client.post(
        "/subscribe?source=twitter-bio",
        data={
            "email": "  Ana@Example.ORG ",
            "name": "Ana",
            "language": "be",
            "lists": [str(lists["alerts"].id)],
        },
        headers={"User-Agent": "TestBrowser/1.0"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 200
    # The page answers in the language just chosen on the form.
    assert "Праверце пошту" in response.get_data(as_text=True)
    assert subscription_states(session, "ana@example.org") == {"alerts": "pending"}
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    assert (reader.name, reader.language, reader.source) == ("Ana", "be", "twitter-bio")
    consent = session.scalar(select(ConsentRecord).where(ConsentRecord.subscriber_id == reader.id))
    assert consent.ip == "198.51.100.7" and consent.user_agent == "TestBrowser/1.0"
    assert consent.list_ids == [lists["alerts"].id]
    assert consent.consent_text and consent.consent_version == "1"
    assert consent.source == "twitter-bio" and consent.confirmed_at is None


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"email": "not-an-address", "lists": ["alerts"]}, "email", "not a valid email"),
        ({"email": "", "lists": ["alerts"]}, "email", "enter your email"),
        ({"email": "ana@example.org", "lists": []}, "lists", "Please tick at least one list."),
        (
            {"email": "ana@example.org", "lists": ["staff"]},
            "lists",
            "Please choose only from the lists offered.",
        ),
        (
            {"email": "ana@example.org", "lists": ["alerts"], "language": "xx"},
            "language",
            "Please choose one of the languages offered.",
        ),
        (
            {"email": "ana@example.org", "lists": ["alerts"], "name": "x" * 201},
            "name",
            "Please keep the name under 200 characters.",
        ),
    ],
)
def test_bad_input_is_explained_and_the_form_keeps_what_was_typed(
    client, session, lists, form, field, message
):
    data = {
        "name": form.get("name", "Ana Typed"),
        "language": form.get("language", "en"),
        "email": form["email"],
        "lists": [str(lists[s].id) for s in form["lists"]],
    }
    response = client.post("/subscribe", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert f'id="{field}-error"' in html
    if message[0].isupper():  # our own sentences, word for word
        assert f'id="{field}-error" class="field-error" role="alert">{message}</small>' in html
    assert f'value="{data["email"]}"' in html  # what was typed is still there
    if len(data["name"]) <= 200:
        assert f'value="{data["name"]}"' in html
    for slug in form["lists"]:
        if slug != "staff":
            assert f'value="{lists[slug].id}" checked' in html
    assert count(session, Subscriber) == 0 and count(session, ConsentRecord) == 0


def test_cross_site_sidebar_post_needs_no_csrf_token(client, session, lists):
    response = client.post(
        "/subscribe",
        data={
            "email": "side@example.org",
            "lists": [str(lists["news"].id)],
            "form": "blog-sidebar",
        },
        headers={"Origin": "https://blog.example.net", "Referer": "https://blog.example.net/post"},
    )
    assert response.status_code == 200
    assert subscription_states(session, "side@example.org") == {"news": "pending"}
    assert session.scalar(select(ConsentRecord.form)) == "blog-sidebar"


def test_json_sign_up_and_json_errors(client, session, lists):
    ok = client.post(
        "/subscribe",
        json={"email": "j@example.org", "lists": [lists["news"].id]},
        headers={"Accept": "application/json"},
    )
    assert ok.status_code == 202 and ok.get_json()["status"] == "accepted"
    assert subscription_states(session, "j@example.org") == {"news": "pending"}
    bad = client.post(
        "/subscribe", json={"email": "nope", "lists": []}, headers={"Accept": "application/json"}
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["fields"]) == {"email", "lists"}


def test_json_from_a_configured_origin_gets_cors_headers(client, lists, settings, monkeypatch):
    from dataclasses import replace

    client.application.config["CLARION"] = replace(
        settings, embed_origins=("https://blog.example.net",)
    )
    pre = client.options("/subscribe", headers={"Origin": "https://blog.example.net"})
    assert pre.headers["Access-Control-Allow-Origin"] == "https://blog.example.net"
    other = client.post(
        "/subscribe",
        json={"email": "c@example.org", "lists": [lists["news"].id]},
        headers={"Origin": "https://evil.example.com", "Accept": "application/json"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_honeypot_pretends_success_and_records_nothing(client, session, lists):
    response = client.post(
        "/subscribe",
        data={
            "email": "bot@example.org",
            "website": "http://spam",
            "lists": [str(lists["news"].id)],
        },
    )
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    assert count(session, Subscriber) == 0


def test_responses_never_reveal_whether_an_address_is_known(client, session, lists, subscribed):
    data = {"lists": [str(lists["alerts"].id)]}
    known = client.post("/subscribe", data={**data, "email": subscribed.email})
    unknown = client.post("/subscribe", data={**data, "email": "new@example.org"})
    session.add(Suppression(email="gone@example.org", reason=SuppressionReason.HARD_BOUNCE))
    session.commit()
    suppressed = client.post("/subscribe", data={**data, "email": "gone@example.org"})
    bodies = {r.get_data(as_text=True) for r in (known, unknown, suppressed)}
    assert {r.status_code for r in (known, unknown, suppressed)} == {200}
    assert len(bodies) == 1
    # Nothing is asked of the already-subscribed or the suppressed address.
    assert subscription_states(session, subscribed.email) == {
        "alerts": "subscribed",
        "news": "subscribed",
    }
    assert subscription_states(session, "gone@example.org") == {}


def test_one_confirmation_per_address_per_window(client, session, lists):
    from clarion.audience import subscribers
    from clarion.audience.subscribers import SubscribeRequest

    first = subscribers.subscribe(session, SubscribeRequest("w@example.org", [lists["news"].id]))
    second = subscribers.subscribe(session, SubscribeRequest("w@example.org", [lists["alerts"].id]))
    session.commit()
    assert first.consent_id is not None
    assert second.consent_id is None  # recorded, but no second mail within the window
    assert subscription_states(session, "w@example.org") == {"news": "pending", "alerts": "pending"}


def test_rate_limit_per_network(client, session, lists, monkeypatch, settings):
    from dataclasses import replace

    import clarion.audience.subscribers as subs

    monkeypatch.setattr(
        subs, "get_settings", lambda: replace(settings, subscribe_limit_per_ip="3/hour")
    )
    codes = [
        client.post(
            "/subscribe",
            data={"email": f"r{i}@example.org", "lists": [str(lists["news"].id)]},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        ).status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    refused = client.post(
        "/subscribe",
        data={"email": "r9@example.org", "lists": [str(lists["news"].id)]},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert "Too many sign-ups from your network. Please try again in a while." in paragraphs(
        refused.text
    )
    assert count(session, Subscriber) == 3
    other = client.post(
        "/subscribe",
        data={"email": "x@example.org", "lists": [str(lists["news"].id)]},
        environ_base={"REMOTE_ADDR": "203.0.113.10"},
    )
    assert other.status_code == 200


def test_rate_limit_per_address_is_silent(client, session, lists, monkeypatch, settings):
    from dataclasses import replace

    import clarion.audience.subscribers as subs

    monkeypatch.setattr(
        subs, "get_settings", lambda: replace(settings, subscribe_limit_per_address="2/day")
    )
    for i in range(4):
        r = client.post(
            "/subscribe",
            data={"email": "victim@example.org", "lists": [str(lists["news"].id)]},
            environ_base={"REMOTE_ADDR": f"203.0.113.{i}"},
        )
        assert r.status_code == 200
    assert count(session, ConsentRecord) == 2
    # The limit is the victim's own: other addresses sign up as usual, from the same network.
    for name in ("ana", "bo"):
        client.post(
            "/subscribe",
            data={"email": f"{name}@example.org", "lists": [str(lists["news"].id)]},
            environ_base={"REMOTE_ADDR": "203.0.113.0"},
        )
    assert count(session, ConsentRecord) == 4


def test_addresses_are_normalised_idn_included(session, lists):
    from clarion.addresses import normalise_email

    assert normalise_email("  Ana@EXAMPLE.org") == "ana@example.org"
    assert normalise_email("ana@BÜCHER.example") == "ana@bücher.example"
    assert normalise_email("ana@xn--bcher-kva.example") == "ana@bücher.example"


def test_a_request_with_only_an_address_and_lists_records_plain_defaults(session, lists):
    """What the consent record keeps when a caller gives nothing else (the CLI, an import)."""
    from clarion.audience import subscribers

    outcome = subscribers.subscribe(
        session, subscribers.SubscribeRequest("bo@example.org", [lists["alerts"].id])
    )
    session.commit()
    consent = session.get(ConsentRecord, outcome.consent_id)
    assert consent.action == "subscribe" and outcome.list_ids == [lists["alerts"].id]
    assert (consent.form, consent.ip, consent.user_agent, consent.source) == (
        "subscribe",
        None,
        None,
        None,
    )
    # The words the reader agreed to are evidence: they are kept exactly.
    assert consent.consent_text == (
        "I agree to receive the lists I ticked by email. I can leave at any time with one click."
    )
    assert (consent.consent_version, consent.details) == ("1", {"name": "", "language": "en"})
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "bo@example.org"))
    assert (reader.name, reader.language, reader.source) == (None, "en", None)


def test_a_suppressed_address_that_confirms_is_told_neutrally(client, session, lists):
    from clarion.audience import subscribers

    outcome = subscribers.subscribe(
        session, subscribers.SubscribeRequest("cy@example.org", [lists["alerts"].id])
    )
    session.add(Suppression(email="cy@example.org", reason=SuppressionReason.COMPLAINT))
    session.commit()
    token = subscribers.confirm_token(session.get(ConsentRecord, outcome.consent_id))
    with pytest.raises(Suppressed) as refused:
        subscribers.confirm(session, token, None)
    assert str(refused.value) == (
        "We cannot subscribe this address right now. If you think this is a mistake, please "
        "contact the people who run this list."
    )


def test_a_name_of_two_hundred_characters_is_fine(session, lists):
    from clarion.audience import subscribers

    request = subscribers.SubscribeRequest("cy@example.org", [lists["alerts"].id], name="x" * 200)
    assert subscribers.subscribe(session, request).consent_id is not None


def test_a_silent_outcome_names_no_lists(session, lists):
    from clarion.audience import subscribers

    session.add(Suppression(email="dy@example.org", reason=SuppressionReason.MANUAL))
    session.commit()
    request = subscribers.SubscribeRequest("dy@example.org", [lists["alerts"].id])
    assert subscribers.subscribe(session, request) == subscribers.SubscribeOutcome(None, [])


def test_list_names_are_those_asked_for_or_all(session, lists):
    from clarion.audience import subscribers

    assert subscribers.list_names(session, [lists["news"].id]) == ["Newsletter"]
    assert subscribers.list_names(session, []) == []
    assert subscribers.list_names(session, None) == ["Newsletter", "Staff only", "Urgent alerts"]


def test_an_erased_reader_is_known_by_keyed_hash_alone_and_no_one_else_is(session, lists):
    """After erasure only a keyed hash remains: it refuses that address, and only that one."""
    from clarion.audience import erasure, subscribers

    subscribers.subscribe(
        session, subscribers.SubscribeRequest("ey@example.org", [lists["alerts"].id])
    )
    session.commit()
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ey@example.org"))
    erasure.erase_reader(session, reader)
    session.commit()
    kept = session.scalars(select(Suppression)).all()
    assert [(row.email, bool(row.email_hash)) for row in kept] == [(None, True)]

    again = subscribers.SubscribeRequest("EY@example.org", [lists["alerts"].id])
    assert subscribers.subscribe(session, again) == subscribers.SubscribeOutcome(None, [])
    other = subscribers.SubscribeRequest("fy@example.org", [lists["alerts"].id])
    assert subscribers.subscribe(session, other).consent_id is not None
    assert subscribers.is_suppressed(session, "ey@example.org")
    assert not subscribers.is_suppressed(session, "fy@example.org")
