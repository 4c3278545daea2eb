"""Reader tokens: signed, expiring proof that the holder followed a petition link in their mail.

Minted when a reader clicks a click token (never stored in the mail), bound to one delivery
and one petition. The petition page uses it to recognise the reader, showing only a masked
address; signing with it counts at once only while the mail is fresh (clarion.actions.signing).
"""

from __future__ import annotations

from dataclasses import dataclass

from clarion import tokens
from clarion.errors import InvalidToken

READER_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Reader:
    """Who a valid reader token speaks for: a delivery (so an alert and a subscriber)."""

    delivery_token: str
    slug: str


def reader_token(delivery_token: str, slug: str) -> str:
    """A token for the reader of one delivery, valid on one petition's page."""
    return tokens.sign_timed(tokens.READER, f"{delivery_token}/{slug}")


def read_reader_token(token: str, slug: str) -> Reader:
    """The reader behind a token for this petition; InvalidToken if forged, expired or elsewhere."""
    value = tokens.unsign_timed(tokens.READER, token, max_age=READER_TTL_SECONDS)
    delivery_token, _, bound_slug = value.partition("/")
    if bound_slug != slug:
        raise InvalidToken("This link is for another petition.")
    return Reader(delivery_token=delivery_token, slug=slug)


def stay_token(delivery_token: str) -> str:
    """A token for the reader of one delivery, to press "Yes, keep me" on the stay page."""
    return tokens.sign(tokens.STAY, delivery_token)


def read_stay_token(token: str) -> str:
    """The click token of the delivery a stay token speaks for; InvalidToken if forged."""
    return tokens.unsign(tokens.STAY, token)
