"""The preference centre: lists, language, leave everything, join again with confirmation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clarion import tokens
from clarion.models import ConsentRecord, Subscriber, Suppression, SuppressionReason
from tests.helpers import csrf_from, refresh, subscription_states


@pytest.fixture
def prefs(subscribed):
    return f"/preferences/{tokens.preferences_token(subscribed.uid)}"


def _post(client, url, **data):
    token = csrf_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def test_page_shows_the_readers_lists_and_language(client, prefs, lists):
    html = client.get(prefs).get_data(as_text=True)
    assert f'value="{lists["alerts"].id}" checked' in html
    assert f'value="{lists["news"].id}" checked' in html
    assert 'value="en" selected' in html
    assert "Staff only" not in html


def test_untick_a_list_and_change_language(client, session, prefs, subscribed, lists):
    response = _post(client, prefs, lists=[str(lists["news"].id)], language="be", name="R.")
    assert response.status_code == 200
    assert subscription_states(session, subscribed.email) == {
        "alerts": "unsubscribed",
        "news": "subscribed",
    }
    refresh(session)
    reader = session.get(Subscriber, subscribed.id)
    assert (reader.language, reader.name) == ("be", "R.")


def test_joining_again_needs_a_fresh_confirmation(client, session, prefs, subscribed, lists):
    _post(client, prefs, lists=[str(lists["news"].id)], language="en")
    response = _post(
        client, prefs, lists=[str(lists["news"].id), str(lists["alerts"].id)], language="en"
    )
    assert "confirmation mail" in response.get_data(as_text=True)
    assert subscription_states(session, subscribed.email)["alerts"] == "pending"
    consent = session.scalar(select(ConsentRecord).where(ConsentRecord.action == "resubscribe"))
    assert consent.list_ids == [lists["alerts"].id] and consent.confirmed_at is None


def test_leave_everything(client, session, prefs, subscribed):
    response = _post(client, prefs, action="unsubscribe_all")
    assert "left every list" in response.get_data(as_text=True)
    assert set(subscription_states(session, subscribed.email).values()) == {"unsubscribed"}


def test_suppressed_reader_cannot_rejoin_and_is_told_neutrally(
    client, session, prefs, subscribed, lists
):
    _post(client, prefs, action="unsubscribe_all")
    session.add(Suppression(email=subscribed.email, reason=SuppressionReason.HARD_BOUNCE))
    session.commit()
    response = _post(client, prefs, lists=[str(lists["alerts"].id)], language="en")
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "cannot subscribe this address" in html and "bounce" not in html.lower()
    assert set(subscription_states(session, subscribed.email).values()) == {"unsubscribed"}


def test_bad_input_keeps_the_form_and_changes_nothing(client, session, prefs, subscribed, lists):
    response = _post(client, prefs, lists=[str(lists["news"].id)], language="xx", name="Kept Name")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "languages offered" in html and 'value="Kept Name"' in html
    assert f'value="{lists["alerts"].id}" checked' not in html  # the unticked box stays unticked
    assert subscription_states(session, subscribed.email) == {
        "alerts": "subscribed",
        "news": "subscribed",
    }


def test_private_list_ids_cannot_be_smuggled_in(client, session, prefs, subscribed, lists):
    response = _post(client, prefs, lists=[str(lists["staff"].id)], language="en")
    assert response.status_code == 422
    assert "staff" not in subscription_states(session, subscribed.email)


def test_forged_preferences_link(client, prefs):
    assert client.get(prefs[:-4] + "AAAA").status_code == 400


def test_each_refusal_is_explained_in_its_own_words(session, subscribed, lists):
    from clarion.audience import subscribers
    from clarion.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        subscribers.update_preferences(
            session,
            subscribed,
            wanted_list_ids=[lists["staff"].id],
            name="x" * 201,
            language="xx",
            ip=None,
            user_agent=None,
        )
    assert refused.value.errors == {
        "language": "Please choose one of the languages offered.",
        "name": "Please keep the name under 200 characters.",
        "lists": "Please choose only from the lists offered.",
    }
    outcome = subscribers.update_preferences(
        session,
        subscribed,
        wanted_list_ids=[lists["alerts"].id],
        name="x" * 200,
        language="en",
        ip=None,
        user_agent=None,
    )
    assert outcome.left == [lists["news"].id] and subscribed.name == "x" * 200
    assert (outcome.consent_id, outcome.pending) == (None, [])  # nothing to confirm
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.action == "unsubscribe"))
    assert record.source == "preferences"


def test_coming_back_records_where_and_opens_the_mail_window(session, subscribed, lists, settings):
    from clarion import throttle
    from clarion.audience import subscribers
    from clarion.redisconn import get_redis

    subscribers.unsubscribe(session, subscribed, None)
    subscribed.name = None
    consent_id = subscribers.request_resubscribe(
        session, subscribed, [lists["news"].id], ip=None, user_agent=None
    )
    consent = session.get(ConsentRecord, consent_id)
    assert (consent.action, consent.form, consent.details) == (
        "resubscribe",
        "preferences",
        {"name": "", "language": "en"},
    )
    window = settings.confirm_resend_minutes * 60
    key = f"clarion:once:confirm:{throttle.address_key(subscribed.email)}"
    assert window - 5 < get_redis().ttl(key) <= window
