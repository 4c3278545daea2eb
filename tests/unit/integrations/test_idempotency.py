"""What makes two API requests "the same" for an Idempotency-Key, and which keys are usable."""

from __future__ import annotations

import pytest

from clarion.errors import ValidationError
from clarion.integrations import idempotency


def test_method_path_and_body_each_change_the_fingerprint():
    base = idempotency.request_hash("POST", "/api/v1/tags", b'{"name":"a"}')
    assert base == idempotency.request_hash("POST", "/api/v1/tags", b'{"name":"a"}')
    assert base != idempotency.request_hash("POST", "/api/v1/tags", b'{"name":"b"}')
    assert base != idempotency.request_hash("POST", "/api/v1/lists", b'{"name":"a"}')
    assert base != idempotency.request_hash("PUT", "/api/v1/tags", b'{"name":"a"}')


def test_parts_cannot_be_shifted_from_one_into_the_next():
    # Without the lengths, "/a" + "b" and "/ab" + "" would hash alike.
    assert idempotency.request_hash("POST", "/a", b"b") != idempotency.request_hash(
        "POST", "/ab", b""
    )


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ", "a\nb", "tab\there"])
def test_unusable_keys_are_refused_naming_the_header(key):
    with pytest.raises(ValidationError) as caught:
        idempotency._check_key(key)
    assert list(caught.value.errors) == ["Idempotency-Key"]


@pytest.mark.parametrize("key", ["a", "550e8400-e29b-41d4-a716-446655440000", "x" * 255])
def test_usable_keys_pass(key):
    idempotency._check_key(key)
