"""RFC 8058 one-click unsubscribe: POST leaves at once with nothing but the token."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clarion import tokens
from clarion.audience import subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.db import utcnow
from clarion.models import ConsentRecord, Subscriber, Subscription
from tests.helpers import csrf_from, paragraphs, refresh, subscription_states


@pytest.fixture
def token(subscribed, lists):
    return tokens.unsubscribe_token(subscribed.uid, [lists["alerts"].id])


def test_one_click_post_form_urlencoded(app, session, subscribed, token):
    client = app.test_client(use_cookies=False)
    response = client.post(
        f"/unsubscribe/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert subscription_states(session, subscribed.email) == {
        "alerts": "unsubscribed",
        "news": "subscribed",
    }
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.action == "unsubscribe"))
    assert record.source == "one-click"


def test_one_click_post_multipart(app, session, subscribed, token):
    client = app.test_client(use_cookies=False)
    response = client.post(
        f"/unsubscribe/{token}",
        data={"List-Unsubscribe": "One-Click"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert subscription_states(session, subscribed.email)["alerts"] == "unsubscribed"


def test_one_click_is_idempotent(app, session, subscribed, token):
    client = app.test_client(use_cookies=False)
    for _ in range(3):
        r = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200
    refresh(session)
    assert subscription_states(session, subscribed.email)["alerts"] == "unsubscribed"
    withdrawals = session.scalars(
        select(ConsentRecord).where(ConsentRecord.action == "unsubscribe")
    )
    assert len(list(withdrawals)) == 1


def test_get_shows_a_page_and_never_unsubscribes(client, session, subscribed, token):
    response = client.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Urgent alerts" in html and 'value="One-Click"' in html
    assert subscription_states(session, subscribed.email)["alerts"] == "subscribed"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-3] + "abc",
        lambda t: t.replace("~", "~x", 1),
        lambda t: "forged." + t.split(".")[-1],
        lambda t: t.split(".")[0],
    ],
)
def test_forged_or_altered_tokens_unsubscribe_nobody(app, session, subscribed, token, mutate):
    client = app.test_client(use_cookies=False)
    response = client.post(f"/unsubscribe/{mutate(token)}", data={"List-Unsubscribe": "One-Click"})
    assert 400 <= response.status_code < 500
    assert subscription_states(session, subscribed.email) == {
        "alerts": "subscribed",
        "news": "subscribed",
    }


def test_token_for_another_reader_cannot_be_rewritten(app, session, subscribed, lists):
    other_token = tokens.unsubscribe_token("someone-else-uid", [lists["alerts"].id])
    forged = other_token.replace("someone-else-uid", subscribed.uid)
    client = app.test_client(use_cookies=False)
    response = client.post(f"/unsubscribe/{forged}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert subscription_states(session, subscribed.email)["alerts"] == "subscribed"


def test_post_without_the_one_click_body_is_refused(app, session, subscribed, token):
    client = app.test_client(use_cookies=False)
    assert client.post(f"/unsubscribe/{token}").status_code == 400
    assert subscription_states(session, subscribed.email)["alerts"] == "subscribed"


def test_all_scope_leaves_every_list(app, session, subscribed):
    client = app.test_client(use_cookies=False)
    token = tokens.unsubscribe_token(subscribed.uid)
    assert (
        client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code
        == 200
    )
    assert set(subscription_states(session, subscribed.email).values()) == {"unsubscribed"}


def test_unsubscribing_ends_pending_subscriptions_so_an_old_link_cannot_resubscribe(
    app, session, lists
):
    outcome = subscribers.subscribe(
        session, SubscribeRequest("ana@example.org", [lists["alerts"].id], name="Ana")
    )
    session.commit()
    old_link = subscribers.confirm_token(session.get(ConsentRecord, outcome.consent_id))
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "ana@example.org"))
    assert subscription_states(session, reader.email) == {"alerts": "pending"}

    client = app.test_client()
    leave = tokens.unsubscribe_token(reader.uid)
    response = client.post(f"/unsubscribe/{leave}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert subscription_states(session, reader.email) == {"alerts": "unsubscribed"}

    page = client.get(f"/confirm/{old_link}")
    client.post(f"/confirm/{old_link}", data={"csrf_token": csrf_from(page.text)})
    assert subscription_states(session, reader.email) == {"alerts": "unsubscribed"}


def test_an_alert_s_own_link_leaves_that_alert_s_lists_only(app, session, subscribed, lists):
    from clarion.models import Alert, AlertKind

    alert = Alert(
        kind=AlertKind.NEWSLETTER,
        subject="Day 9",
        fields={"body_md": "x"},
        audience={"lists": [lists["news"].id]},
    )
    session.add(alert)
    session.commit()
    token = tokens.unsubscribe_token(subscribed.uid, alert_uid=alert.uid)
    client = app.test_client(use_cookies=False)
    response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert subscription_states(session, subscribed.email) == {
        "alerts": "subscribed",
        "news": "unsubscribed",
    }
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.action == "unsubscribe"))
    assert (record.alert_id, record.list_ids, record.source) == (
        alert.id,
        [lists["news"].id],
        "one-click",
    )


def test_a_list_scope_leaves_just_that_list_and_says_when(session, subscribed, lists):
    before = utcnow()
    left = subscribers.unsubscribe(session, subscribed, [lists["news"].id])
    session.commit()
    assert left == [lists["news"].id]
    assert subscription_states(session, subscribed.email) == {
        "alerts": "subscribed",
        "news": "unsubscribed",
    }
    refresh(session)
    news = session.scalar(
        select(Subscription).where(
            Subscription.subscriber_id == subscribed.id, Subscription.list_id == lists["news"].id
        )
    )
    assert news.unsubscribed_at is not None and news.unsubscribed_at >= before
    record = session.scalar(select(ConsentRecord).where(ConsentRecord.action == "unsubscribe"))
    assert record.source is None and record.alert_id is None


def test_a_link_of_a_reader_since_deleted_says_so(app, session, subscribed):
    token = tokens.unsubscribe_token(subscribed.uid)
    session.delete(subscribed)
    session.commit()
    client = app.test_client(use_cookies=False)
    response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert "This subscription no longer exists." in paragraphs(response.text)


def test_a_request_cannot_be_changed_once_made():
    request = SubscribeRequest("ana@example.org", [1])
    with pytest.raises(AttributeError):
        request.email = "someone@example.org"  # type: ignore[misc]
