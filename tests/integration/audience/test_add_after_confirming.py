"""Right after confirming, a reader who adds a list in the preference centre is not told to wait
a quarter of an hour: with the proof the confirmation page carries, the list is joined at once;
from any other preferences link, a fresh confirmation mail goes out at once."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from clarion import tokens
from clarion.audience import subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.models import ConsentRecord
from tests.helpers import csrf_from, subscription_states


@pytest.fixture
def confirmed_page(client, session, lists):
    """The page a reader sees after confirming the alerts list only: its preferences link."""
    outcome = subscribers.subscribe(
        session, SubscribeRequest("ana@example.org", [lists["alerts"].id], language="en")
    )
    session.commit()
    token = subscribers.confirm_token(session.get(ConsentRecord, outcome.consent_id))
    page = client.get(f"/confirm/{token}")
    done = client.post(
        f"/confirm/{token}", data={"csrf_token": csrf_from(page.get_data(as_text=True))}
    )
    assert done.status_code == 200
    link = re.search(r'href="(/preferences/[^"]+)"', done.get_data(as_text=True)).group(1)
    return unescape(link)


def _save(client, url: str, list_ids: list[int]):
    page = client.get(url).get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "lists": [str(i) for i in list_ids], "language": "en"}
    proof = re.search(r'name="proof" value="([^"]+)"', page)
    if proof:
        form["proof"] = proof.group(1)
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))
    return client.post(action, data=form)


def _resubscribe_consents(session) -> list[ConsentRecord]:
    return list(session.scalars(select(ConsentRecord).where(ConsentRecord.form != "subscribe")))


def test_a_list_added_from_the_confirmation_page_is_joined_without_a_mail(
    client, session, lists, confirmed_page
):
    response = _save(client, confirmed_page, [lists["alerts"].id, lists["news"].id])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "You now receive the lists you added" in html
    assert "a few minutes ago" not in html
    assert subscription_states(session, "ana@example.org") == {
        "alerts": "subscribed",
        "news": "subscribed",
    }
    (consent,) = _resubscribe_consents(session)
    assert consent.list_ids == [lists["news"].id]
    assert (consent.action, consent.form) == ("subscribe", "preferences-after-confirm")
    assert consent.confirmed_at is not None  # vouched for by the confirmation just made


def test_from_another_preferences_link_a_fresh_mail_goes_out_at_once(
    client, session, lists, confirmed_page
):
    plain = confirmed_page.split("?")[0]  # the link in a mail: no proof
    assert "proof" not in plain
    response = _save(client, plain, [lists["alerts"].id, lists["news"].id])
    html = response.get_data(as_text=True)
    assert "open the confirmation mail we just sent you" in html
    assert subscription_states(session, "ana@example.org")["news"] == "pending"
    (consent,) = _resubscribe_consents(session)
    assert consent.confirmed_at is None


def test_a_proof_for_someone_else_or_too_old_joins_nothing(client, session, lists, subscribed):
    subscribers.unsubscribe(session, subscribed, [lists["news"].id])
    session.commit()
    prefs = f"/preferences/{tokens.preferences_token(subscribed.uid)}"
    other = tokens.mailbox_proof("someone-else")
    assert not subscribers.mailbox_proven(subscribed, other)
    assert not tokens.holds_mailbox_proof(subscribed.uid, tokens.mailbox_proof(subscribed.uid), -1)
    page = client.get(f"{prefs}?proof={other}").get_data(as_text=True)
    assert 'name="proof"' not in page
    response = client.post(
        prefs,
        data={
            "csrf_token": csrf_from(page),
            "lists": [str(lists["alerts"].id), str(lists["news"].id)],
            "language": "en",
            "proof": other,
        },
    )
    assert response.status_code == 200
    assert subscription_states(session, subscribed.email)["news"] == "pending"
