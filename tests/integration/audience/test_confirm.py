"""Double opt-in: the confirmation link is signed, expires, works once, and needs a press."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clarion.audience import subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.models import (
    ConsentRecord,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from tests.helpers import csrf_from, paragraphs, refresh, subscription_states


@pytest.fixture
def pending(session, lists):
    outcome = subscribers.subscribe(
        session,
        SubscribeRequest(
            "ana@example.org", [lists["alerts"].id, lists["news"].id], name="Ana", language="ru"
        ),
    )
    session.commit()
    consent = session.get(ConsentRecord, outcome.consent_id)
    return subscribers.confirm_token(consent)


def _confirm(client, token):
    page = client.get(f"/confirm/{token}")
    assert page.status_code == 200
    return client.post(
        f"/confirm/{token}",
        data={"csrf_token": csrf_from(page.get_data(as_text=True))},
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
    )


def test_opening_the_link_asks_and_does_not_confirm(client, session, pending):
    page = client.get(f"/confirm/{pending}")
    assert page.status_code == 200
    assert "Urgent alerts" in page.get_data(as_text=True)
    assert set(subscription_states(session, "ana@example.org").values()) == {"pending"}


def test_pressing_confirm_subscribes_and_records_when_and_from_where(client, session, pending):
    response = _confirm(client, pending)
    assert response.status_code == 200
    assert "Вы подписаны" in response.get_data(as_text=True)  # in the reader's language, ru
    assert subscription_states(session, "ana@example.org") == {
        "alerts": "subscribed",
        "news": "subscribed",
    }
    consent = session.scalar(select(ConsentRecord))
    assert consent.confirmed_at is not None and consent.confirm_ip == "192.0.2.44"


def test_the_link_works_once(client, session, pending):
    assert _confirm(client, pending).status_code == 200
    again = client.get(f"/confirm/{pending}")
    assert again.status_code == 400
    assert "This link was already used. Your subscription is confirmed." in paragraphs(again.text)


def test_an_altered_link_confirms_nothing(client, session, pending):
    forged = pending[:-2] + ("AA" if not pending.endswith("AA") else "BB")
    assert client.get(f"/confirm/{forged}").status_code == 400
    assert client.post(f"/confirm/{forged}").status_code == 400
    assert set(subscription_states(session, "ana@example.org").values()) == {"pending"}


def test_an_expired_link_confirms_nothing(client, session, pending, monkeypatch, settings):
    import itsdangerous.timed as timed

    real = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real() + settings.confirm_ttl_hours * 3600 + 5)
    response = client.get(f"/confirm/{pending}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert set(subscription_states(session, "ana@example.org").values()) == {"pending"}


def test_name_and_language_apply_only_after_confirmation(client, session, subscribed, lists):
    # Someone else types a known address with another name: nothing changes until confirmed.
    outcome = subscribers.subscribe(
        session,
        SubscribeRequest(subscribed.email, [lists["news"].id], name="Mallory", language="pl"),
    )
    session.commit()
    assert outcome.consent_id is None  # already subscribed to news: nothing to confirm
    refresh(session)
    reader = session.scalar(select(Subscriber).where(Subscriber.email == subscribed.email))
    assert (reader.name, reader.language) == ("Reader", "en")


def test_a_suppressed_address_cannot_confirm(client, session, pending):
    session.add(Suppression(email="ana@example.org", reason=SuppressionReason.COMPLAINT))
    session.commit()
    response = _confirm(client, pending)
    assert response.status_code == 409
    assert "cannot subscribe this address" in response.get_data(as_text=True)
    assert set(subscription_states(session, "ana@example.org").values()) == {"pending"}


def test_confirm_post_needs_the_csrf_token(client, session, pending):
    response = client.post(f"/confirm/{pending}")
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)
    assert set(subscription_states(session, "ana@example.org").values()) == {"pending"}


def test_a_known_reader_joining_more_lists_gets_the_name_and_language_on_confirming(
    client, session, lists
):
    reader = Subscriber(email="cy@example.org", name="Old", language="en")
    session.add(reader)
    session.flush()
    session.add(
        Subscription(
            subscriber_id=reader.id,
            list_id=lists["alerts"].id,
            status=SubscriptionStatus.SUBSCRIBED,
        )
    )
    session.commit()
    # Already on alerts: only news waits for the confirmation, whatever the order asked in.
    outcome = subscribers.subscribe(
        session,
        SubscribeRequest(
            "cy@example.org", [lists["alerts"].id, lists["news"].id], name="Cy", language="ru"
        ),
    )
    session.commit()
    assert outcome.list_ids == [lists["news"].id]
    consent = session.get(ConsentRecord, outcome.consent_id)
    assert consent.details == {"name": "Cy", "language": "ru"}
    _confirm(client, subscribers.confirm_token(consent))
    refresh(session)
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "cy@example.org"))
    assert (reader.name, reader.language) == ("Cy", "ru")
    assert subscription_states(session, "cy@example.org") == {
        "alerts": "subscribed",
        "news": "subscribed",
    }
    joined = session.scalar(
        select(Subscription).where(
            Subscription.subscriber_id == reader.id, Subscription.list_id == lists["news"].id
        )
    )
    assert joined.subscribed_at is not None and joined.unsubscribed_at is None


def test_one_confirmation_mail_per_window_whether_subscribing_or_coming_back(
    session, lists, settings
):
    from clarion import throttle
    from clarion.redisconn import get_redis

    first = subscribers.subscribe(session, SubscribeRequest("dy@example.org", [lists["news"].id]))
    session.commit()
    assert first.consent_id is not None
    key = f"clarion:once:confirm:{throttle.address_key('dy@example.org')}"
    window = settings.confirm_resend_minutes * 60
    assert window - 5 < get_redis().ttl(key) <= window
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "dy@example.org"))
    again = subscribers.request_resubscribe(
        session, reader, [lists["alerts"].id], ip=None, user_agent=None
    )
    assert again is None  # the same window: no second mail


def test_a_well_signed_link_to_no_consent_record_is_not_valid(session, pending):
    from clarion import tokens
    from clarion.errors import InvalidToken

    stray = tokens.sign_timed(tokens.CONFIRM, "a-nonce-we-never-made")
    with pytest.raises(InvalidToken) as refused:
        subscribers.consent_for_token(session, stray)
    assert str(refused.value) == "This link is not valid."


def test_what_the_consent_record_keeps_is_cut_to_its_columns(session, lists):
    outcome = subscribers.subscribe(
        session,
        SubscribeRequest(
            "ey@example.org", [lists["news"].id], user_agent="U" * 500, form="f" * 100
        ),
    )
    consent = session.get(ConsentRecord, outcome.consent_id)
    assert (consent.user_agent, consent.form) == ("U" * 400, "f" * 64)


def test_the_link_of_a_reader_since_deleted_confirms_no_one(client, session, pending):
    """Deleting a reader takes their pending consent with it: the old link is simply invalid."""
    from clarion.errors import InvalidToken

    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    session.delete(reader)
    session.commit()
    with pytest.raises(InvalidToken) as refused:
        subscribers.confirm(session, pending, None)
    assert str(refused.value) == "This link is not valid."
    assert session.scalar(select(Subscriber)) is None
