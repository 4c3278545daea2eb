"""Signed tokens: round trips, and every kind of tampering refused."""

from __future__ import annotations

import itertools

import pytest

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
