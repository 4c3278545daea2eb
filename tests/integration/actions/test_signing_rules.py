"""The signing rules one by one, at the domain's door: limits, words, links' lifetimes, the
reader recognised from a mail. (Written for the survivors of the mutation run of signing.py.)"""

from __future__ import annotations

import dataclasses
import time

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from clarion.actions import signing
from clarion.actions.signing import SignRequest, SignStatus
from clarion.errors import InvalidToken, NotFound, RateLimited, ValidationError
from clarion.models import Signature
from tests.helpers import refresh
from tests.integration.alertkit import make_petition


def _refused(session, petition, **fields) -> dict[str, str]:
    request = SignRequest(**{"name": "Ana", "email": "ana@example.org", **fields})
    with pytest.raises(ValidationError) as refused:
        signing.sign(session, petition, request)
    session.rollback()
    return refused.value.errors


def _signs(session, petition, **fields) -> signing.SignOutcome:
    request = SignRequest(**{"name": "Ana", "email": "ana@example.org", **fields})
    outcome = signing.sign(session, petition, request)
    session.commit()
    return outcome


# The limits as the readers are told them, written out: not the module's own constants, which
# a changed limit would change here too.
MAX_NAME, MAX_COMMENT = 200, 2000


def test_each_limit_is_inclusive_and_each_refusal_says_what_to_fix(session, lists):
    petition = make_petition(session)
    assert _refused(session, petition, name="x" * (MAX_NAME + 1)) == {
        "name": "Please keep the name under 200 characters."
    }
    assert _refused(session, petition, name="   ") == {"name": "Please enter your name."}
    assert _refused(session, petition, comment="x" * (MAX_COMMENT + 1)) == {
        "comment": "Please keep the comment under 2000 characters."
    }
    assert _refused(session, petition, country="XX") == {
        "country": "Please choose a country from the list, or none."
    }
    assert _refused(session, petition, list_ids=[lists["staff"].id]) == {
        "lists": "Please choose only from the lists offered."
    }
    every_public_list = [lists["alerts"].id, lists["news"].id]
    outcome = _signs(
        session,
        petition,
        name="x" * MAX_NAME,
        comment="y" * MAX_COMMENT,
        list_ids=every_public_list,
    )
    assert outcome.status == SignStatus.SIGNED
    assert sorted(outcome.lists_pending) == sorted(every_public_list)
    assert outcome.list_consent_id is not None  # the double opt-in mail is to be sent
    [signature] = session.scalars(select(Signature)).all()
    assert (len(signature.name), len(signature.comment)) == (MAX_NAME, MAX_COMMENT)


def test_a_closed_petition_and_a_busy_network_are_told_plainly(session, monkeypatch):
    closed = make_petition(session, slug="closed", is_open=False)
    with pytest.raises(NotFound) as refused:
        signing.sign(session, closed, SignRequest("Ana", "ana@example.org"))
    assert str(refused.value) == "This petition is closed and no longer takes signatures."
    petition = make_petition(session)
    monkeypatch.setattr(signing, "SIGN_LIMIT_PER_IP", "2/hour")
    for i in range(2):
        _signs(session, petition, email=f"r{i}@example.org", ip="203.0.113.5")
    with pytest.raises(RateLimited) as limited:
        _signs(session, petition, email="r9@example.org", ip="203.0.113.5")
    assert (
        str(limited.value) == "Too many signatures from your network. Please try again in a while."
    )
    assert _signs(session, petition, email="r9@example.org", ip="198.51.100.5").status == "signed"


def _token_aged(monkeypatch, signature, seconds: int) -> str:
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - seconds)
    try:
        return signing.confirm_token(signature)
    finally:
        monkeypatch.setattr(TimestampSigner, "get_timestamp", real)


def test_a_confirmation_link_lives_exactly_its_hours(session, settings, monkeypatch):
    petition = make_petition(session, require_confirmation=True)
    _signs(session, petition)
    [signature] = session.scalars(select(Signature)).all()
    ttl = settings.confirm_ttl_hours * 3600
    for age in (ttl + 30, ttl * 2):
        with pytest.raises(InvalidToken) as expired:
            signing.confirm(session, petition, _token_aged(monkeypatch, signature, age))
        assert str(expired.value) == "This link has expired."
    assert signing.confirm(session, petition, _token_aged(monkeypatch, signature, 3600)).id
    session.commit()
    refresh(session)
    assert session.get(Signature, signature.id).confirmed_at is not None
    with pytest.raises(InvalidToken) as forged:
        signing.confirm(session, petition, signing.confirm_token(signature) + "x")
    assert str(forged.value) == "This link is not valid."


def test_a_confirmation_after_closing_is_told_so(session):
    petition = make_petition(session, require_confirmation=True)
    _signs(session, petition)
    [signature] = session.scalars(select(Signature)).all()
    petition.is_open = False
    session.commit()
    with pytest.raises(NotFound) as refused:
        signing.confirm(session, petition, signing.confirm_token(signature))
    assert str(refused.value) == "This petition closed before the signature was confirmed."


def test_the_confirmation_mail_goes_once_a_while_per_mailbox(session, settings):
    from clarion.redisconn import get_redis

    petition = make_petition(session, require_confirmation=True)
    first = _signs(session, petition, email="ana@gmail.com")
    assert first.status == "check_inbox" and first.confirm_signature_id is not None
    again = _signs(session, petition, email="ana@gmail.com")
    assert again.status == SignStatus.CHECK_INBOX and again.confirm_signature_id is None
    # Another spelling of one inbox is a signature of its own, but no second mail.
    dotted = _signs(session, petition, email="a.na+x@gmail.com")
    assert dotted.confirm_signature_id is None
    second = make_petition(session, slug="other", require_confirmation=True)
    other = _signs(session, second, email="ana@gmail.com")
    assert other.confirm_signature_id is not None  # another petition's mail is its own
    mark = f":{petition.id}:".encode()
    [key] = [k for k in get_redis().scan_iter("*signature-confirm*") if mark in k]
    window = settings.confirm_resend_minutes * 60
    assert window - 5 <= get_redis().ttl(key) <= window


def test_country_names_in_the_language_asked_for(settings):
    names = dict(signing.countries("be"))
    assert names["BY"] == "Беларусь" and names["PL"] == "Польшча"
    assert dict(signing.countries("en"))["PL"] == "Poland"


def test_a_request_and_a_recognised_reader_cannot_be_changed_once_made():
    """Handed from the page to the domain: what was checked is what gets signed."""
    reader = signing.Prefill("ana@example.org", alert_id=1, subscriber_id=2, fresh=True)
    request = SignRequest("Ana", "", reader=reader)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reader.fresh = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.email = "someone@example.org"
    assert (reader.language, request.reader.masked) == (None, "a\u2022\u2022\u2022@example.org")


def test_an_outcome_says_only_what_happened(session):
    """The API answers with the status's value; the mails to send and the lists' note are
    empty unless something asked for them."""
    petition = make_petition(session)
    counted = _signs(session, petition)
    assert counted.status == "signed" and counted.signed_at is not None
    assert (counted.confirm_signature_id, counted.list_consent_id) == (None, None)
    assert (counted.lists_pending, counted.lists_note) == ([], "")
    confirming = make_petition(session, slug="confirming", require_confirmation=True)
    waiting = _signs(session, confirming)
    assert waiting.status == "check_inbox" and waiting.signed_at is None
    assert (waiting.list_consent_id, waiting.lists_pending, waiting.lists_note) == (None, [], "")
    [signature] = session.scalars(select(Signature).where(Signature.petition_id == petition.id))
    assert (signature.country, signature.comment, signature.source) == ("", "", None)


def test_each_signature_that_comes_to_count_is_told_to_the_webhooks_once(session, published):
    """At once when counted on signing; with confirmation, on the first confirmation only."""
    from clarion.models import WebhookEndpoint, WebhookEvent

    session.add(WebhookEndpoint(url="https://crm.example.org/hook", events=["petition.signed"],
                                secret="s" * 40))  # fmt: skip
    petition = make_petition(session)
    _signs(session, petition, country="by")
    confirming = make_petition(session, slug="confirming", require_confirmation=True)
    _signs(session, confirming, email="bo@example.org")

    def told() -> list[dict]:
        refresh(session)
        events = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        assert {e.type for e in events} <= {"petition.signed"}
        return [e.payload for e in events]

    [signed] = session.scalars(select(Signature).where(Signature.petition_id == petition.id))
    assert told() == [
        {"petition_id": petition.id, "signature_id": signed.id, "subscriber_id": None,
         "country": "BY", "email": "ana@example.org"}
    ]  # fmt: skip
    [waiting] = session.scalars(select(Signature).where(Signature.petition_id == confirming.id))
    for _ in range(2):  # the same link twice: counted once, told once
        signing.confirm(session, confirming, signing.confirm_token(waiting))
        session.commit()
    assert told()[1:] == [
        {"petition_id": confirming.id, "signature_id": waiting.id, "subscriber_id": None,
         "country": None, "email": "bo@example.org"}
    ]  # fmt: skip


def _signed_meanwhile(session, petition, email: str, **fields) -> None:
    """Before `session` writes its next row, another request signs with `email` and commits."""
    from sqlalchemy import event

    from clarion.db import session_factory

    def other_request(*_args) -> None:
        other = session_factory()()
        try:
            other.add(Signature(petition_id=petition.id, email=email, name="First", **fields))
            other.commit()
        finally:
            other.close()

    event.listen(session, "before_flush", other_request, once=True)


@pytest.mark.parametrize("require_confirmation", [False, True])
def test_of_two_simultaneous_signatures_of_one_address_the_first_counts(
    session, backend, require_confirmation
):
    """The lost insert race: only PostgreSQL lets two transactions both see no signature (on
    SQLite a writer holds the database from its first statement, so they queue)."""
    if backend.name != "postgresql":
        pytest.skip("two writers at once need PostgreSQL: SQLite's writers queue")
    from clarion.db import utcnow

    petition = make_petition(session, require_confirmation=require_confirmation)
    confirmed = {} if require_confirmation else {"confirmed_at": utcnow()}
    _signed_meanwhile(session, petition, "ana@example.org", **confirmed)
    outcome = _signs(session, petition, name="Second")
    [signature] = session.scalars(select(Signature)).all()
    assert signature.name == "First"
    if require_confirmation:  # the first one's mail, sent once
        assert outcome.status == SignStatus.CHECK_INBOX
        assert outcome.confirm_signature_id == signature.id
    else:
        assert outcome.status == SignStatus.SIGNED and outcome.signed_at is None
        assert outcome.confirm_signature_id is None


def test_a_name_is_kept_with_single_spaces(session):
    petition = make_petition(session)
    _signs(session, petition, name="  Ana \t Maria\n  Bel ")
    assert session.scalar(select(Signature.name)) == "Ana Maria Bel"


def test_lists_too_busy_to_join_leave_the_signature_counted_and_say_so(
    session, lists, settings, monkeypatch
):
    """Joining lists is never a condition of signing: when the network has signed up too
    often, the signature counts and the signer is told the lists must wait."""
    from clarion.audience import subscribers
    from clarion.models import ConsentRecord

    monkeypatch.setattr(
        subscribers,
        "get_settings",
        lambda: dataclasses.replace(settings, subscribe_limit_per_ip="1/hour"),
    )
    first = make_petition(session)
    second = make_petition(session, slug="second")
    network = {"list_ids": [lists["alerts"].id], "ip": "203.0.113.7"}
    assert _signs(session, first, **network).lists_note == ""
    outcome = _signs(session, second, email="bo@example.org", **network)
    assert outcome.status == SignStatus.SIGNED
    assert outcome.lists_note == "We could not add you to the lists right now; please try later."
    assert (outcome.list_consent_id, outcome.lists_pending) == (None, [])
    assert len(session.scalars(select(Signature)).all()) == 2
    assert len(session.scalars(select(ConsentRecord)).all()) == 1


def test_a_confirmation_link_confirms_only_on_its_own_petition(session):
    petition = make_petition(session, require_confirmation=True)
    other = make_petition(session, slug="other", require_confirmation=True)
    _signs(session, petition)
    _signs(session, other, email="bo@example.org")
    [signature] = session.scalars(select(Signature).where(Signature.petition_id == petition.id))
    with pytest.raises(InvalidToken) as refused:
        signing.confirm(session, other, signing.confirm_token(signature))
    assert str(refused.value) == "This link is not valid."
    session.rollback()
    refresh(session)
    assert session.scalars(select(Signature.confirmed_at)).all() == [None, None]
