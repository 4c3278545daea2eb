"""Signed tokens: round trips, and every kind of tampering refused."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from itsdangerous import Signer

from clarion import tokens
from clarion.errors import InvalidToken
from clarion.tokens import DeliveryTokens

SECRET = "unit-test-secret-0123456789abcdef0123456789"


def test_signed_value_round_trips_and_is_bound_to_its_purpose():
    token = tokens.sign(tokens.UNSUBSCRIBE, "abc~all", secret=SECRET)
    assert tokens.unsign(tokens.UNSUBSCRIBE, token, secret=SECRET) == "abc~all"
    with pytest.raises(InvalidToken):
        tokens.unsign(tokens.PREFERENCES, token, secret=SECRET)
    with pytest.raises(InvalidToken):
        tokens.unsign(tokens.UNSUBSCRIBE, token, secret=SECRET + "x")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("abc", "abd", 1),  # altered value
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # altered signature
        lambda t: t.split(".")[0],  # signature removed
        lambda t: "",
    ],
)
def test_altered_tokens_are_refused(mutate):
    token = tokens.sign(tokens.UNSUBSCRIBE, "abc~all", secret=SECRET)
    with pytest.raises(InvalidToken):
        tokens.unsign(tokens.UNSUBSCRIBE, mutate(token), secret=SECRET)


def test_timed_tokens_expire(monkeypatch):
    import itsdangerous.timed as timed

    token = tokens.sign_timed(tokens.CONFIRM, "nonce", secret=SECRET)
    assert tokens.unsign_timed(tokens.CONFIRM, token, max_age=60, secret=SECRET) == "nonce"
    real = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real() + 61)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.unsign_timed(tokens.CONFIRM, token, max_age=60, secret=SECRET)


def test_delivery_tokens_round_trip_survive_case_folding_and_hide_the_id():
    codec = DeliveryTokens(SECRET)
    seen = set()
    for delivery_id in [1, 2, 3, 2**31, 2**63 - 1]:
        token = codec.encode(delivery_id)
        assert len(token) == 26 and token == token.lower() and token.isalnum()
        assert codec.decode(token) == delivery_id
        assert codec.decode(token.upper()) == delivery_id  # MTAs may change the case
        seen.add(token)
    assert len(seen) == 5
    # Consecutive ids give unrelated tokens: nothing to learn about list size or order.
    a, b = codec.encode(1000), codec.encode(1001)
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 10


def test_forged_delivery_tokens_are_refused():
    codec = DeliveryTokens(SECRET)
    token = codec.encode(42)
    other = DeliveryTokens(SECRET + "other")
    with pytest.raises(InvalidToken):
        other.decode(token)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    refused = tried = 0
    for i, ch in itertools.product(range(26), alphabet):
        if token[i] == ch:
            continue
        tried += 1
        forged = token[:i] + ch + token[i + 1 :]
        try:
            codec.decode(forged)
        except InvalidToken:
            refused += 1
    assert refused == tried == 26 * 31  # every single change, the last character's spare bits too
    for junk in ["", "x" * 26, token + "a", "../../etc/passwd", "é" * 26]:
        with pytest.raises(InvalidToken):
            codec.decode(junk)


def test_a_delivery_token_is_good_for_its_own_purpose_only():
    codecs = {p: DeliveryTokens(SECRET, p) for p in tokens.DELIVERY_PURPOSES}
    made = {p: codec.encode(42) for p, codec in codecs.items()}
    assert len(set(made.values())) == len(made)  # four unrelated spellings of one delivery
    for purpose, codec in codecs.items():
        for other, token in made.items():
            if other == purpose:
                assert codec.decode(token) == 42
            else:
                with pytest.raises(InvalidToken):
                    codec.decode(token)
    # Mail sent before purposes existed carries the old single token: it is the legacy one.
    assert made[tokens.LEGACY] == DeliveryTokens(SECRET, tokens.LEGACY).encode(42)
    with pytest.raises(ValueError):
        DeliveryTokens(SECRET, "elsewhere")


def test_the_fast_base32_spells_tokens_as_the_standard_library_does():
    import base64
    import random

    rng = random.Random(12)
    for block in [bytes(16), b"\xff" * 16, *(rng.randbytes(16) for _ in range(2000))]:
        expected = base64.b32encode(block).decode().rstrip("=").lower()
        assert tokens._base32(block) == expected


# Links already in readers' mailboxes must keep working after an upgrade: each purpose's salt
# and the delivery token's key derivation are pinned by tokens made once with SECRET.
KNOWN = {
    "CONFIRM": "value.oBXB01oU6xjR5L5YGiUAIePLNXkf3BDrIyXiuTNOWTE",
    "UNSUBSCRIBE": "value.NnfRzM6FzDOXX7BiHgPpMxuNlcKZOKBAcOUGwzKHD3w",
    "PREFERENCES": "value.kdiDhdkMkSGqKLK6Jpgxj6gstwMdKvM6G4n7q03og8A",
    "READER": "value.1-I9q-nPc21lHpwdCNRtnACms2M_XcilWkiAPMweB24",
    "SIGNATURE_CONFIRM": "value.gKI8DiEY51AAL66A57utdR38uVD_1ys3M4Fyq9PEkdM",
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_tokens_already_sent_keep_their_meaning(name):
    purpose = getattr(tokens, name)
    assert tokens.sign(purpose, "value", secret=SECRET) == KNOWN[name]
    assert tokens.unsign(purpose, KNOWN[name], secret=SECRET) == "value"


def test_timed_tokens_already_sent_keep_their_meaning(monkeypatch):
    import itsdangerous.timed as timed

    monkeypatch.setattr(timed.time, "time", lambda: 1767225600.0)
    token = "nonce.aVW5AA.c47UpkIOH9fJ9nn1U0iJx0CuayHtF2OUwid7ZIWtWN8"
    assert tokens.sign_timed(tokens.CONFIRM, "nonce", secret=SECRET) == token
    assert tokens.unsign_timed(tokens.CONFIRM, token, max_age=1, secret=SECRET) == "nonce"


def test_delivery_tokens_already_sent_keep_their_meaning():
    # Mail sent before tokens had purposes carries the legacy token: its links keep working.
    codec = DeliveryTokens(SECRET, tokens.LEGACY)
    assert codec.encode(1) == "l54xqcntez5gwdhvxd6ilr6uha"
    assert codec.decode("jkywypaqc2mj6hqyesl5avqbxq") == 2**40


@pytest.mark.parametrize(
    ("refuse", "message"),
    [
        (lambda: tokens.unsign(tokens.CONFIRM, "x.y", secret=SECRET), "This link is not valid."),
        (
            lambda: tokens.unsign_timed(tokens.CONFIRM, "x.y.z", max_age=9, secret=SECRET),
            "This link is not valid.",
        ),
        (lambda: DeliveryTokens(SECRET).decode("short"), "This link is not valid."),
        (lambda: DeliveryTokens(SECRET).decode("1" * 26), "This link is not valid."),
        (lambda: DeliveryTokens(SECRET).decode("a" * 26), "This link is not valid."),
        (lambda: DeliveryTokens(SECRET).decode("a" * 25 + "b"), "This link is not valid."),
    ],
)
def test_a_refused_token_says_so_in_words_a_reader_understands(refuse, message):
    with pytest.raises(InvalidToken) as refused:
        refuse()
    assert str(refused.value) == message


def test_an_expired_timed_token_says_it_expired(monkeypatch):
    import itsdangerous.timed as timed

    monkeypatch.setattr(timed.time, "time", lambda: 1767225600.0)
    token = tokens.sign_timed(tokens.CONFIRM, "nonce", secret=SECRET)
    monkeypatch.setattr(timed.time, "time", lambda: 1767225600.0 + 10)
    with pytest.raises(InvalidToken) as refused:
        tokens.unsign_timed(tokens.CONFIRM, token, max_age=9, secret=SECRET)
    assert str(refused.value) == "This link has expired."


@pytest.mark.parametrize("junk", ["a" * 34, "a" * 40, "a" * 27, "2" * 56])
def test_delivery_tokens_of_another_length_are_refused_as_invalid(junk):
    with pytest.raises(InvalidToken):
        DeliveryTokens(SECRET).decode(junk)


def test_every_delivery_token_round_trips():
    """Thousands of ids: every last character, every spelling of the base32 tail."""
    codec = DeliveryTokens(SECRET)
    endings = set()
    for delivery_id in range(1, 3000):
        token = codec.encode(delivery_id)
        assert len(token) == 26 and codec.decode(token) == delivery_id
        endings.add(token[-1])
    assert len(endings) >= 4  # the last character carries two bits: some of each


def test_the_delivery_codec_is_made_once_per_secret(monkeypatch):
    monkeypatch.setattr(tokens, "_secret", lambda: SECRET + "-configured")
    given = tokens.delivery_tokens(tokens.CLICK, SECRET)
    # One cipher context per purpose on the bulk path.
    assert given is tokens.delivery_tokens(tokens.CLICK, SECRET)
    assert given.encode(7) == DeliveryTokens(SECRET, tokens.CLICK).encode(7)
    configured = DeliveryTokens(SECRET + "-configured", tokens.CLICK)
    assert tokens.delivery_tokens(tokens.CLICK).encode(7) == configured.encode(7)


@pytest.fixture
def configured(monkeypatch):
    monkeypatch.setattr(tokens, "_secret", lambda: SECRET)


@pytest.mark.usefixtures("configured")
def test_unsubscribe_scopes_round_trip():
    by_lists = tokens.read_unsubscribe_token(tokens.unsubscribe_token("u1", [3, 1, 3]))
    assert by_lists == tokens.UnsubscribeScope("u1", list_ids=(1, 3), alert_uid=None)
    assert by_lists.everything is False
    by_alert = tokens.read_unsubscribe_token(tokens.unsubscribe_token("u1", [4], "A9"))
    assert by_alert == tokens.UnsubscribeScope("u1", list_ids=(), alert_uid="A9")
    assert by_alert.everything is False
    everything = tokens.read_unsubscribe_token(tokens.unsubscribe_token("u1"))
    assert everything == tokens.UnsubscribeScope("u1")
    assert (everything.list_ids, everything.alert_uid, everything.everything) == ((), None, True)
    single = tokens.read_unsubscribe_token(tokens.unsubscribe_token("u1", [12]))
    assert single.list_ids == (12,)


@pytest.mark.usefixtures("configured")
def test_unsubscribe_tokens_already_sent_keep_their_meaning():
    sent = {
        "u1~l1-3.tpiYfGIdrS7U9GH2dTYZneBM9Fr4A8BasDtG75zLYyQ": ("u1", (1, 3), None),
        "u1~aA9.pJpRfCaEibS9uRlscZlrGi0IRCQUtM-BVXtEvsyn-pQ": ("u1", (), "A9"),
        "u1~all.jJmpRqsPPv8hQjtJcexgtsYpMXtgcPGuRzOKY337SIY": ("u1", (), None),
    }
    for token, (uid, list_ids, alert_uid) in sent.items():
        scope = tokens.read_unsubscribe_token(token)
        assert (scope.subscriber_uid, scope.list_ids, scope.alert_uid) == (uid, list_ids, alert_uid)
    assert set(sent) == {
        tokens.unsubscribe_token("u1", [3, 1]),
        tokens.unsubscribe_token("u1", [2], alert_uid="A9"),
        tokens.unsubscribe_token("u1"),
    }
    assert tokens.preferences_token("u1") == tokens.sign(tokens.PREFERENCES, "u1", secret=SECRET)


def test_a_scope_cannot_be_changed_once_read():
    scope = tokens.UnsubscribeScope("u1", list_ids=(1,))
    with pytest.raises(AttributeError):
        scope.list_ids = ()  # type: ignore[misc]


def test_the_bulk_signer_makes_itsdangerous_tokens_and_follows_the_secret():
    # The key is derived once per signer, and a signer is made per secret: a new secret key
    # signs with its own key, never with one derived from the old.
    for secret in ("first-secret-that-is-long-enough-0123", "second-secret-long-enough-45678"):
        for purpose in (tokens.UNSUBSCRIBE, tokens.PREFERENCES):
            plain = Signer(secret, salt=f"clarion.{purpose}", digest_method=hashlib.sha256)
            for value in ("u1~aAlert", "ü~all", ""):
                assert tokens.sign(purpose, value, secret) == plain.sign(value).decode()
                assert tokens.unsign(purpose, plain.sign(value).decode(), secret) == value
