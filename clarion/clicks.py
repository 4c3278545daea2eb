"""Following a tracked link, `/r/<delivery token>/<n>`: verify, resolve from Redis, buffer.

The reader is only ever sent to link n of the alert as it was frozen; nothing taken from the
request becomes part of the target. Links to our own petition pages get a reader token
appended at this moment, so the sign form can be prefilled for this reader alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clarion import eventstream, linkmap, readers
from clarion.errors import InvalidToken, NotFound
from clarion.tokens import delivery_tokens

LINK_INDEX = re.compile(r"[0-9]{1,5}")  # ASCII digits only: int() would take "٣" too
PETITION_PATH = re.compile(r"/p/([a-z0-9][a-z0-9-]{0,99})/?")
DEFAULT_SOURCE = "email"
NOT_FOUND = "This link does not exist."


@dataclass(frozen=True)
class Followed:
    """Where a click goes, and what was recorded."""

    url: str
    alert_id: int
    delivery_id: int
    link_index: int
    event_id: str


def follow(token: str, link_index: str, base_url: str) -> Followed:
    """Resolve and record a click; NotFound for a bad token, an unknown delivery or n."""
    if not LINK_INDEX.fullmatch(link_index):
        raise NotFound(NOT_FOUND)
    try:
        delivery_id = delivery_tokens().decode(token)
    except InvalidToken:
        raise NotFound(NOT_FOUND) from None
    alert_id = linkmap.alert_of(delivery_id)
    if alert_id is None:
        raise NotFound(NOT_FOUND)
    links = linkmap.links_of(alert_id)
    n = int(link_index)
    if n >= len(links):
        raise NotFound(NOT_FOUND)
    event_id = eventstream.record_click(delivery_id, alert_id, n)
    url = links[n]
    slug = petition_slug(url, base_url)
    if slug is not None:
        url = with_reader_token(url, readers.reader_token(token.lower(), slug))
    return Followed(url, alert_id, delivery_id, n, event_id)


def petition_slug(url: str, base_url: str) -> str | None:
    """The slug when `url` is one of our own petition pages, else None."""
    if not url.startswith(base_url + "/p/"):
        return None
    match = PETITION_PATH.fullmatch(urlsplit(url).path)
    return match.group(1) if match else None


def with_reader_token(url: str, reader_token: str) -> str:
    """The petition URL with the reader token, and a source if the editor set none."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "r"]
    if not any(k == "source" for k, _v in query):
        query.append(("source", DEFAULT_SOURCE))
    query.append(("r", reader_token))
    return urlunsplit(parts._replace(query=urlencode(query)))
