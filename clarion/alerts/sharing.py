"""Share links for a petition, each tagged with its own `?source=`, and Mastodon's hand-off."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from clarion.alerts.kinds import share_links
from clarion.errors import ValidationError
from clarion.i18n import gettext as _

NETWORKS = ("x", "bluesky", "mastodon", "facebook", "telegram")
MAX_SHARE_TEXT = 1000
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def petition_url(base_url: str, slug: str, source: str | None = None) -> str:
    """The public address of a petition, with a source code when given."""
    url = f"{base_url}/p/{slug}"
    return f"{url}?{urlencode({'source': source})}" if source else url


def petition_share_links(base_url: str, slug: str, title: str) -> dict[str, str]:
    """Intent links for each network plus `copy`, each pointing back with source=share-<name>."""
    links = {}
    for network in NETWORKS:
        url = petition_url(base_url, slug, f"share-{network}")
        text = title if network in {"telegram", "facebook"} else f"{title} {url}"
        links[network] = share_links(text, url, base_url)[network]
    links["copy"] = petition_url(base_url, slug, "share-copy")
    return links


def mastodon_instance(raw: str) -> str:
    """The host name of a Mastodon server as a reader typed it; ValidationError otherwise.

    Accepts `mastodon.social`, `https://mastodon.social/`, or a handle like
    `@ana@mastodon.social`; refuses anything with a path, a port, credentials or an IP address,
    so the hand-off can only ever go to https://<host>/share.
    """
    value = raw.strip().lower()
    value = re.sub(r"^https?://", "", value).rstrip("/")
    if value.count("@") and re.fullmatch(r"@?[a-z0-9_.]+@[^@/]+", value):
        value = value.rsplit("@", 1)[1]
    try:
        host = value.encode("idna").decode("ascii") if value else ""
    except UnicodeError:
        host = ""
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # an IP address, not a server name
    ):
        raise ValidationError(
            {"instance": _("Enter the address of your Mastodon server, like mastodon.social.")}
        )
    return host


def mastodon_share_url(instance: str, text: str) -> str:
    """Where to send the reader: their own server's share page with the text filled in."""
    host = mastodon_instance(instance)
    return f"https://{host}/share?" + urlencode({"text": text[:MAX_SHARE_TEXT]}, quote_via=quote)
