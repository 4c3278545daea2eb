"""A petition's confirmation mail goes once per mailbox per interval, the first one included."""

from __future__ import annotations

from clarion.actions import signing
from tests.integration.alertkit import make_petition

VARIANTS = [
    "victim@gmail.com",
    "victim+1@gmail.com",
    "v.ictim@gmail.com",
    "Vic.tim+x@googlemail.com",
]


def sign(session, petition, email):
    outcome = signing.sign(session, petition, signing.SignRequest(name="Ana", email=email))
    session.commit()
    return outcome


def test_signing_again_at_once_sends_no_second_mail(session):
    petition = make_petition(session, require_confirmation=True)
    first = sign(session, petition, "ana@example.org")
    again = sign(session, petition, "ana@example.org")
    assert first.status == again.status == signing.SignStatus.CHECK_INBOX
    assert first.confirm_signature_id is not None
    assert again.confirm_signature_id is None


def test_signature_variants_of_one_mailbox_get_one_mail(session):
    petition = make_petition(session, require_confirmation=True)
    mailed = [sign(session, petition, a).confirm_signature_id is not None for a in VARIANTS]
    assert mailed == [True, False, False, False]


def test_once_the_interval_is_over_signing_again_sends_the_mail_again(session):
    from clarion.redisconn import get_redis

    petition = make_petition(session, require_confirmation=True)
    first = sign(session, petition, "ana@example.org")
    assert sign(session, petition, "ana@example.org").confirm_signature_id is None
    for key in get_redis().scan_iter("*signature-confirm*"):  # as the interval ending does
        get_redis().delete(key)
    again = sign(session, petition, "ana@example.org")
    assert again.status == signing.SignStatus.CHECK_INBOX
    assert again.confirm_signature_id == first.confirm_signature_id
