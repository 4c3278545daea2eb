"""Following a tracked link, `/r/<click token>/<n>`: verify, resolve from Redis, buffer.

The reader is only ever sent to link n of the alert as it was frozen; nothing taken from the
request becomes part of the target. Links to our own petition pages get a reader token
appended at this moment, so the petition page can recognise this reader (masked) alone; the
"Yes, keep me" link of a "stay subscribed?" mail gets the reader's stay token the same way.
A token of mail sent before tokens had purposes (clarion.tokens.LEGACY) still redirects and
counts, but recognises no one: it was also the bounce and unsubscribe address of its mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.commands.core import Script

from clarion.errors import InvalidToken, NotFound
from clarion.redisconn import get_redis
from clarion.tokens import CLICK, LEGACY, STAY_PATH, delivery_tokens
from clarion.tracking import eventstream, linkmap, readers

LINK_INDEX = re.compile(r"[0-9]{1,5}")  # ASCII digits only: int() would take "٣" too
PETITION_PATH = re.compile(r"/p/([a-z0-9][a-z0-9-]{0,99})/?")
DEFAULT_SOURCE = "email"
NOT_FOUND = "This link does not exist."

# The whole hot path in one round trip: which alert, which URL, and the click buffered.
# The links hash is named from the alert id found on the way (a key not passed in KEYS):
# fine on the single Redis server Clarion uses, not on a Redis Cluster.
# The stream entry has the fields of eventstream.record_click.
_FOLLOW = """
local alert = redis.call('HGET', KEYS[1], ARGV[1])
if not alert then return {} end
local url = redis.call('HGET', ARGV[3] .. alert, ARGV[2])
if not url then return {alert} end
local id = redis.call('XADD', KEYS[2], '*', 'k', 'c', 'd', ARGV[1], 'a', alert, 'n', ARGV[2])
return {alert, url, id}
"""


@lru_cache(maxsize=1)
def _follow_script() -> Script:
    # Called with the current client each time: clients are replaced after a fork.
    return get_redis().register_script(_FOLLOW)


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
    delivery_id, recognises = decode_click(token)
    n = int(link_index)
    found = _resolve(delivery_id, n)
    if found is None:
        raise NotFound(NOT_FOUND)
    alert_id, url, event_id = found
    slug = petition_slug(url, base_url)
    if slug is not None and recognises:
        url = with_reader_token(url, readers.reader_token(token.lower(), slug))
    elif recognises and url == base_url + STAY_PATH:
        # A "stay subscribed?" mail's button: the page it opens asks the reader to press once
        # more (a scanner following the link stays nothing).
        url = f"{url}?{urlencode({'t': readers.stay_token(token.lower())})}"
    return Followed(url, alert_id, delivery_id, n, event_id)


def decode_click(token: str) -> tuple[int, bool]:
    """The delivery id of a click token, and whether it may recognise its reader; NotFound
    for anything else (a VERP or mailto token among them)."""
    try:
        return delivery_tokens(CLICK).decode(token), True
    except InvalidToken:
        pass
    try:
        return delivery_tokens(LEGACY).decode(token), False
    except InvalidToken:
        raise NotFound(NOT_FOUND) from None


def _resolve(delivery_id: int, n: int) -> tuple[int, str, str] | None:
    """(alert, URL, event id) with the click recorded, or None when there is no such link."""
    keys = [linkmap.bucket_key(delivery_id), eventstream.STREAM]
    args = [delivery_id, n, linkmap.LINKS_PREFIX]
    reply = _follow_script()(keys=keys, args=args, client=get_redis())
    if len(reply) == 3:
        return int(reply[0]), reply[1].decode(), reply[2].decode()
    # Redis lacks the delivery or the alert's links (lost, or never primed): the slow way.
    alert_id = int(reply[0]) if reply else linkmap.alert_of(delivery_id)
    if alert_id is None:
        return None
    links = linkmap.links_of(alert_id)
    if n >= len(links):
        return None
    return alert_id, links[n], eventstream.record_click(delivery_id, alert_id, n)


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
