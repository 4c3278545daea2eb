"""From the alert to a signature: the reader recognised (masked) only by a valid, recent link;
one press counts only while the mail is fresh, later a confirmation mail decides."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clarion.models import Delivery, Signature, Subscriber, Subscription, SubscriptionStatus
from clarion.tokens import LEGACY, delivery_tokens
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


def sign_as_reader(client, html: str, name: str = "Reader 0"):
    """Press sign on a recognised page: the form has no address field, only the name."""
    assert 'id="email"' not in html
    return client.post(
        "/p/free-them",
        data={
            "csrf_token": csrf_from(html),
            "name": name,
            "source": re.search(r'name="source" value="([^"]*)"', html).group(1),
        },
    )


def test_a_reader_from_the_alert_is_recognised_by_a_masked_address_only(client, alert_sent):
    """Probe finding #1: /r/<tok>/1 showed the form prefilled with the reader's address."""
    _petition, _alert, deliveries = alert_sent
    page, _token = follow(client, deliveries[1])
    html = page.get_data(as_text=True)
    assert "reader1@example.org" not in html and "Reader 1" not in html
    assert "reader0@example.org" not in html
    assert 'id="prefilled"' in html and 'id="not-you"' in html
    assert "r\u2022\u2022\u2022@example.org" in html
    assert "no-store" in page.headers["Cache-Control"]


def test_one_press_signs_with_alert_and_source_while_the_mail_is_fresh(client, session, alert_sent):
    _petition, alert, deliveries = alert_sent
    page, _token = follow(client, deliveries[0])
    response = sign_as_reader(client, page.text)
    assert 'id="signed"' in response.text  # counted now: a fresh mail proved the address
    refresh(session)
    signature = session.scalar(select(Signature))
    assert signature.email == "reader0@example.org" and signature.name == "Reader 0"
    assert signature.alert_id == alert.id and signature.source == "email"
    assert signature.subscriber_id == deliveries[0].subscriber_id
    assert signature.confirmed_at is not None
    # After signing, the page no longer recognises anyone.
    assert 'id="prefilled"' not in client.get("/p/free-them").text


def test_a_reader_whose_mail_is_no_longer_fresh_confirms_by_mail(client, session, settings):
    make_petition(session)  # no confirmation asked of anonymous signers
    people = make_readers(session, 1)
    _alert, deliveries = frozen_alert(
        session, [f"{settings.base_url}/p/free-them"], people, sent_ago=timedelta(days=3)
    )
    page, _token = follow(client, deliveries[0])
    assert 'id="confirm-by-mail"' in page.text
    response = sign_as_reader(client, page.text)
    assert 'id="check-inbox"' in response.text
    refresh(session)
    signature = session.scalar(select(Signature))
    assert signature.email == "reader0@example.org" and signature.confirmed_at is None
    # Signing again through the link does not reveal that this reader had signed.
    page, _token = follow(client, deliveries[0])
    assert 'id="already"' not in sign_as_reader(client, page.text).text


def test_recognition_ends_after_the_recognition_period(client, session, settings):
    make_petition(session)
    people = make_readers(session, 1)
    _alert, deliveries = frozen_alert(
        session,
        [f"{settings.base_url}/p/free-them"],
        people,
        sent_ago=timedelta(days=settings.recognise_days, hours=1),
    )
    page, _token = follow(client, deliveries[0])
    assert 'id="prefilled"' not in page.text and 'id="email"' in page.text


def test_not_you_forgets_the_reader_in_this_browser(client, alert_sent):
    _petition, _alert, deliveries = alert_sent
    page, _token = follow(client, deliveries[0])
    response = client.post("/p/free-them/not-you", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).text
    assert 'id="prefilled"' not in html and shown(html, "email") == ""


def test_a_link_of_mail_sent_before_purposes_redirects_but_recognises_no_one(client, alert_sent):
    _petition, _alert, deliveries = alert_sent
    legacy = delivery_tokens(LEGACY).encode(deliveries[0].id)
    response = client.get(f"/r/{legacy}/0")
    assert response.status_code == 302
    assert "r=" not in urlsplit(response.headers["Location"]).query


def test_a_reader_who_signed_before_is_told_so_plainly(client, session, alert_sent):
    _petition, _alert, deliveries = alert_sent
    first, _token = follow(client, deliveries[0])
    sign_as_reader(client, first.text)
    # Reopening the mail's link: "you signed on …" and the share buttons, not the form again.
    again, _token = follow(client, deliveries[0])
    assert 'id="signed-on"' in again.text and 'id="share-x"' in again.text
    assert 'id="sign-form"' not in again.text
    # A form still open in another tab signs nothing twice, and says so.
    response = sign_as_reader(client, first.text)
    assert 'id="already"' in response.text
    refresh(session)
    assert len(session.scalars(select(Signature)).all()) == 1


def test_a_reader_is_offered_only_the_lists_they_are_not_on(client, session, alert_sent, lists):
    _petition, _alert, deliveries = alert_sent
    reader = session.get(Subscriber, deliveries[0].subscriber_id)
    session.add(
        Subscription(
            subscriber_id=reader.id,
            list_id=lists["alerts"].id,
            status=SubscriptionStatus.SUBSCRIBED,
        )
    )
    session.commit()

    def offered(html: str) -> set[int]:
        return {int(v) for v in re.findall(r'name="lists" value="(\d+)"', html)}

    page, _token = follow(client, deliveries[0])
    assert offered(page.text) == {lists["news"].id}  # not the list they already receive
    stranger = client.application.test_client().get("/p/free-them").text
    assert offered(stranger) == {lists["alerts"].id, lists["news"].id}


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
    assert 'id="prefilled"' in html
    assert "reader0@example.org" not in html and "reader1@example.org" not in html


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
    assert 'id="prefilled"' not in html


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
    assert 'id="prefilled"' not in html


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


def test_the_page_a_readers_mail_led_to_speaks_their_language(client, session, alert_sent):
    _petition, _alert, deliveries = alert_sent
    people = session.scalars(select(Subscriber).order_by(Subscriber.id)).all()
    people[1].language = "uk"
    session.commit()
    page, _token = follow(client, deliveries[1])
    html = page.get_data(as_text=True)
    assert '<html lang="uk"' in html and "Підписати петицію" in html
    assert '<html lang="pl"' in client.get("/p/free-them?lang=pl").get_data(as_text=True)
    sign_as_reader(client, html, "Reader 1")
    session.commit()
    assert session.scalar(select(Signature.language)) == "uk"  # its confirmation mail's


def test_a_link_to_a_mail_not_marked_sent_recognises_no_one(client, session, alert_sent):
    """A delivery the ledger does not hold as sent (put back after a crash) proves nothing."""
    from clarion.actions import signing

    petition, _alert, deliveries = alert_sent
    _page, token = follow(client, deliveries[0])
    assert signing.reader_prefill(session, petition, token).email == "reader0@example.org"
    deliveries[0].sent_at = None
    session.commit()
    assert signing.reader_prefill(session, petition, token) is None
    assert signing.reader_prefill(session, petition, None) is None
    assert signing.reader_prefill(session, petition, token + "x") is None


def test_a_fresh_reader_confirms_their_own_earlier_unconfirmed_signature(
    client, session, alert_sent
):
    """Signed from a shared computer (unconfirmed), then from their own mail: the mail's link
    proves the address, so the earlier signature counts now, once."""
    from clarion.actions import petitions, signing

    petition, _alert, deliveries = alert_sent
    anonymous = signing.sign(session, petition, signing.SignRequest("R0", "reader0@example.org"))
    session.commit()
    assert anonymous.status == signing.SignStatus.CHECK_INBOX
    _page, token = follow(client, deliveries[0])
    reader = signing.reader_prefill(session, petition, token)
    outcome = signing.sign(session, petition, signing.SignRequest("Reader 0", "", reader=reader))
    session.commit()
    assert outcome.status == "already_signed"  # the API says "signed"; the page, "already"
    refresh(session)
    [signature] = session.scalars(select(Signature)).all()
    assert signature.confirmed_at is not None
    assert petitions.signature_count(session, petition.id) == 1


def test_recognition_and_freshness_end_exactly_at_their_limits(
    client, session, settings, alert_sent, monkeypatch
):
    """A mail exactly `reader_sign_hours` old still signs at once; exactly `recognise_days`
    old is still recognised; a second more and each ends."""
    from clarion.actions import signing

    petition, _alert, deliveries = alert_sent
    _page, token = follow(client, deliveries[0])
    sent = session.get(Delivery, deliveries[0].id).sent_at

    def aged(age: timedelta):
        monkeypatch.setattr(signing, "utcnow", lambda: sent + age)
        reader = signing.reader_prefill(session, petition, token)
        return None if reader is None else reader.fresh

    hours = timedelta(hours=settings.reader_sign_hours)
    days, second = timedelta(days=settings.recognise_days), timedelta(seconds=1)
    assert [aged(hours), aged(hours + second)] == [True, False]
    assert [aged(days), aged(days + second)] == [False, None]
