"""Addresses: the mailbox one reaches (for rate limits), the form that goes on the wire, and
text for the logs with the addresses taken out."""

from __future__ import annotations

import pytest

from clarion.addresses import canonical_mailbox, needs_smtputf8, wire_address, without_addresses


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("victim@example.org", "victim@example.org"),
        ("Victim+1@Example.org", "victim@example.org"),
        ("victim+a+b@example.org", "victim@example.org"),
        ("v.ic.tim@gmail.com", "victim@gmail.com"),
        ("V.ictim+news@googlemail.com", "victim@gmail.com"),
        ("v.ictim@example.org", "v.ictim@example.org"),  # dots matter elsewhere
        ("+only@example.org", "+only@example.org"),
    ],
)
def test_canonical_mailbox(address, mailbox):
    assert canonical_mailbox(address) == mailbox


@pytest.mark.parametrize(
    ("address", "wire", "utf8"),
    [
        ("reader@example.org", "reader@example.org", False),
        # IDNA 2008 (UTS 46, not transitional): ß stays ß, unlike IDNA 2003's "fass".
        ("leser@faß.example", "leser@xn--fa-hia.example", False),
        ("ana@пример.рф", "ana@xn--e1afmkfd.xn--p1ai", False),
        # A local part has no ASCII form: only SMTPUTF8 can carry it.
        ("анна@пример.рф", "анна@xn--e1afmkfd.xn--p1ai", True),
    ],
)
def test_wire_address_uses_a_labels_and_keeps_the_local_part(address, wire, utf8):
    assert wire_address(address) == wire
    assert needs_smtputf8(wire_address(address)) is utf8


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
