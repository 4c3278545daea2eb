"""From the alert to a signature in one press: the reader's own data only, and only when valid."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clarion.models import Signature
from clarion.tracking import readers
from tests.helpers import csrf_from, refresh
from tests.integration.alertkit import frozen_alert, make_petition, make_readers, token_of


@pytest.fixture
def alert_sent(session, settings):
    """A petition and an alert linking to it, sent to two readers."""
    petition = make_petition(session, require_confirmation=True)
    people = make_readers(session, 2)
    alert, deliveries = frozen_alert(session, [f"{settings.base_url}/p/free-them"], people)
    return petition, alert, deliveries


def follow(client, delivery):
    """Click the petition link in this delivery's mail and land on the clean petition page."""
    target = client.get(f"/r/{token_of(delivery)}/0").headers["Location"]
    parts = urlsplit(target)
    landing = client.get(f"{parts.path}?{parts.query}")
    assert landing.status_code == 303
    # The token does not stay in the address bar, where it could be copied and shared.
    assert "r=" not in landing.headers["Location"]
    return client.get(landing.headers["Location"]), parse_qs(parts.query)["r"][0]


def shown(html: str, field: str) -> str:
    return re.search(rf'id="{field}" name="{field}"[^>]*value="([^"]*)"', html, re.S).group(1)


def test_a_reader_from_the_alert_finds_the_form_filled_with_their_own_data(client, alert_sent):
    _petition, _alert, deliveries = alert_sent
    page, _token = follow(client, deliveries[1])
    html = page.get_data(as_text=True)
    assert 'id="prefilled"' in html
    assert shown(html, "name") == "Reader 1" and shown(html, "email") == "reader1@example.org"
    assert "reader0@example.org" not in html
    assert "no-store" in page.headers["Cache-Control"]


def test_one_press_signs_with_alert_and_source_without_a_confirmation_mail(
    client, session, alert_sent
):
    _petition, alert, deliveries = alert_sent
    page, _token = follow(client, deliveries[0])
    html = page.get_data(as_text=True)
    response = client.post(
        "/p/free-them",
        data={
            "csrf_token": csrf_from(html),
            "name": shown(html, "name"),
            "email": shown(html, "email"),
            "source": re.search(r'name="source" value="([^"]*)"', html).group(1),
        },
    )
    assert 'id="signed"' in response.text  # counted now: the alert proved the address
    refresh(session)
    signature = session.scalar(select(Signature))
    assert signature.alert_id == alert.id and signature.source == "email"
    assert signature.subscriber_id == deliveries[0].subscriber_id
    assert signature.confirmed_at is not None
    # After signing, the page no longer fills in anyone's data.
    assert 'id="prefilled"' not in client.get("/p/free-them").text


def test_a_reader_who_signed_before_is_told_so_plainly(client, session, alert_sent):
    _petition, _alert, deliveries = alert_sent
    for _ in range(2):
        page, _token = follow(client, deliveries[0])
        response = client.post(
            "/p/free-them",
            data={
                "csrf_token": csrf_from(page.text),
                "name": "Reader 0",
                "email": "reader0@example.org",
            },
        )
    assert 'id="already"' in response.text
    refresh(session)
    assert len(session.scalars(select(Signature)).all()) == 1


def test_another_visitor_sees_no_one_s_data(app, client, alert_sent):
    _petition, _alert, deliveries = alert_sent
    follow(client, deliveries[0])
    stranger = app.test_client().get("/p/free-them").text
    assert "reader0@example.org" not in stranger and 'id="prefilled"' not in stranger


def test_a_token_copied_into_another_browser_shows_only_its_own_reader(app, alert_sent):
    _petition, _alert, deliveries = alert_sent
    _page, token = follow(app.test_client(), deliveries[0])
    other = app.test_client()
    landing = other.get(f"/p/free-them?r={token}")
    html = other.get(landing.headers["Location"]).text
    assert "reader0@example.org" in html and "reader1@example.org" not in html


def _altered(token: str) -> str:
    value, stamp, signature = token.rsplit(".", 2)
    return f"{value}.{stamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_altered, id="signature-altered"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="signature-removed"),
        pytest.param(lambda t: "x" + t, id="value-altered"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_an_altered_reader_token_prefills_nothing(app, alert_sent, spoil):
    _petition, _alert, deliveries = alert_sent
    _page, token = follow(app.test_client(), deliveries[0])
    client = app.test_client()
    landing = client.get(f"/p/free-them?r={spoil(token)}")
    html = client.get(landing.headers["Location"]).text
    assert 'id="prefilled"' not in html and "reader0@example.org" not in html


def test_a_token_swapped_to_another_delivery_prefills_nothing(app, alert_sent):
    _petition, _alert, deliveries = alert_sent
    _page, token = follow(app.test_client(), deliveries[0])
    forged = token.replace(token_of(deliveries[0]), token_of(deliveries[1]))
    client = app.test_client()
    html = client.get(client.get(f"/p/free-them?r={forged}").headers["Location"]).text
    assert "reader1@example.org" not in html and "reader0@example.org" not in html


def test_an_expired_reader_token_prefills_nothing(app, alert_sent, monkeypatch):
    import itsdangerous.timed as timed

    _petition, _alert, deliveries = alert_sent
    _page, token = follow(app.test_client(), deliveries[0])
    real = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real() + readers.READER_TTL_SECONDS + 1)
    client = app.test_client()
    html = client.get(client.get(f"/p/free-them?r={token}").headers["Location"]).text
    assert 'id="prefilled"' not in html and "reader0@example.org" not in html


def test_a_token_for_one_petition_prefills_nothing_on_another(app, session, alert_sent):
    make_petition(session, slug="another-one")
    _petition, _alert, deliveries = alert_sent
    _page, token = follow(app.test_client(), deliveries[0])
    client = app.test_client()
    html = client.get(client.get(f"/p/another-one?r={token}").headers["Location"]).text
    assert "reader0@example.org" not in html


def test_a_reader_who_types_another_address_must_confirm_it(client, session, alert_sent):
    _petition, alert, deliveries = alert_sent
    page, _token = follow(client, deliveries[0])
    response = client.post(
        "/p/free-them",
        data={"csrf_token": csrf_from(page.text), "name": "Someone", "email": "else@example.org"},
    )
    assert 'id="check-inbox"' in response.text
    refresh(session)
    signature = session.scalar(select(Signature))
    assert signature.confirmed_at is None and signature.subscriber_id is None
    assert signature.alert_id == alert.id  # they still came from the alert
