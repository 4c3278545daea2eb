"""Keyed hashes that the database and Redis already hold: their values must never change."""

from __future__ import annotations

import hashlib
import hmac

from clarion import throttle
from clarion.integrations import apitokens

SECRET = "unit-test-secret-that-is-long-enough-0123"


def test_address_key_is_the_truncated_hmac_of_the_address(env):
    want = hmac.new(SECRET.encode(), b"reader@example.org", hashlib.sha256).hexdigest()[:32]
    assert throttle.address_key("reader@example.org") == want


def test_token_hash_is_the_hmac_under_the_derived_key(env):
    key = hmac.new(SECRET.encode(), b"clarion.api-token", hashlib.sha256).digest()
    want = hmac.new(key, b"clarion_abc", hashlib.sha256).hexdigest()
    assert apitokens.token_hash("clarion_abc") == want
