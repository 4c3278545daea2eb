"""The import's cached address check gives exactly email-validator's verdicts."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from clarion.audience.imports import AddressChecker

ADDRESSES = [
    "plain@example.org",
    "Mixed.Case@Example.ORG",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "x@example.org.",
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "a@-example.org",
    "a@example-.org",
    "a@example",
    "a@localhost",
    "a@example.invalid",
    "a@my.local",
    "a@123.123.123.123",
    "a@[127.0.0.1]",
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "a@" + "b" * 63 + ".org",
    "a@" + "b" * 64 + ".org",
    "a@" + ".".join(["c" * 60] * 4) + ".org",
    "user@xn--bcher-kva.example",
    "user@bücher.example",
    "юзер@пример.рф",
    '"quoted"@example.org',
    "a b@example.org",
    "a@b@example.org",
    "@example.org",
    "a@",
    "a@example..org",
    "a@EXAMPLE.org",
    "a@example.c",
    "a@example.123",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_same_verdict_as_email_validator(address):
    checker = AddressChecker()
    try:
        expected = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        with pytest.raises(ValueError) as caught:
            checker.normalise(address)
        assert str(exc) in str(caught.value)
        return
    assert checker.normalise(address) == expected
    assert checker.normalise(address) == expected  # again, from the domain cache


def test_a_domain_is_checked_once():
    checker = AddressChecker()
    for i in range(100):
        checker.normalise(f"user{i}@Example.org")
    assert checker.domains == {"example.org": "example.org"}
