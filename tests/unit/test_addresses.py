"""The mailbox an address reaches, for rate limits: +tags and Gmail's dots fold together."""

from __future__ import annotations

import pytest

from clarion.addresses import canonical_mailbox


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
