"""Double opt-in: the confirmation link is signed, expires, works once, and needs a press."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clarion.audience import subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.models import ConsentRecord, Subscriber, Suppression, SuppressionReason
from tests.helpers import csrf_from, refresh, subscription_states


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
    assert "already used" in again.get_data(as_text=True)


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
