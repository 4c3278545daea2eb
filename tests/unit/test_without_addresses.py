"""Replies and errors as the logs get them: the text kept, the addresses gone."""

from __future__ import annotations

import pytest

from clarion.addresses import without_addresses


@pytest.mark.parametrize(
    "reply, expected",
    [
        (
            "450 4.2.0 <grey@example.org>: Recipient address rejected: Greylisted",
            "450 4.2.0 <(address)>: Recipient address rejected: Greylisted",
        ),
        (
            "452 4.2.2 The email account that you tried to reach is over quota. a.b+x@mail.example",
            "452 4.2.2 The email account that you tried to reach is over quota. (address)",
        ),
        ("421 4.3.2 Service shutting down", "421 4.3.2 Service shutting down"),
        ("user 'ана@пример.бел' unknown", "user '(address)' unknown"),
        ("[Errno 111] Connection refused", "[Errno 111] Connection refused"),
    ],
)
def test_addresses_are_replaced_and_the_reply_is_kept(reply, expected):
    assert without_addresses(reply) == expected
