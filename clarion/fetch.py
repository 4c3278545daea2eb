"""Safe outbound HTTP: public addresses only (checked after DNS and every redirect), bounded."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from clarion.errors import FetchRefused
from clarion.i18n import admin_gettext

MAX_REDIRECTS = 5
USER_AGENT = "Clarion/0.1"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may reach and how much it may take."""

    allow_networks: Sequence[IPNetwork] = ()
    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 10.0

    @classmethod
    def from_settings(cls) -> FetchPolicy:
        """The operator's policy: CLARION_ALLOW_PRIVATE_FETCH, _FETCH_MAX_BYTES, _FETCH_TIMEOUT."""
        from clarion.config import get_settings

        s = get_settings()
        return cls(s.allow_private_fetch, s.fetch_max_bytes, float(s.fetch_timeout))


@dataclass(frozen=True)
class FetchResult:
    """A successful response: where it finally came from, its type and its body."""

    url: str
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def fetch(
    url: str,
    policy: FetchPolicy | None = None,
    accept: str = "*/*",
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """GET `url`, following redirects; FetchRefused says why it was refused or failed.

    `headers` may make the request conditional (If-None-Match, If-Modified-Since): a 304 reply
    is then a result with status 304 and an empty body.
    """
    policy = policy or FetchPolicy.from_settings()
    deadline = time.monotonic() + policy.timeout
    for _ in range(MAX_REDIRECTS + 1):
        response, body = _get_once(url, policy, deadline, accept, headers or {})
        location = response.getheader("Location")
        if response.status in {301, 302, 303, 307, 308} and location:
            url = urljoin(url, location)
            continue
        if response.status not in {200, 304}:
            raise FetchRefused(
                admin_gettext(
                    "%(host)s answered %(status)s %(reason)s.",
                    host=_host(url),
                    status=response.status,
                    reason=response.reason,
                )
            )
        return FetchResult(
            url=url,
            status=response.status,
            content_type=(response.getheader("Content-Type") or "").split(";")[0].strip().lower(),
            body=body,
            headers={k.lower(): v for k, v in response.getheaders()},
        )
    raise FetchRefused(admin_gettext("Too many redirects (more than %(n)s).", n=MAX_REDIRECTS))


def check_url(url: str, policy: FetchPolicy | None = None) -> None:
    """FetchRefused unless `url` is http(s) to a host whose every address the policy allows."""
    policy = policy or FetchPolicy.from_settings()
    _, host, port, _ = _target(url)
    resolve(host, port, policy)


def post(
    url: str, body: bytes, headers: Mapping[str, str], policy: FetchPolicy | None = None
) -> int:
    """POST `body` to `url` (no redirects followed: they are answers); returns the status.

    The address is checked like a GET's; FetchRefused says why the request could not be made.
    The reply's body is read (bounded) and dropped: a receiver's words are not kept.
    """
    with Poster(url, policy) as poster:
        return poster.post(body, headers)


# How a kept-alive connection the server has closed shows itself on the next request.
_CLOSED = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Poster:
    """POSTs to one URL, one after another, over one kept-alive connection.

    The host is resolved and checked once, when the poster is made, and every connection
    (the first, and a new one whenever the server closes the last) goes to that checked
    address: DNS cannot point a later request inward. Use it for a batch, then close it.
    """

    def __init__(self, url: str, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy.from_settings()
        scheme, self.host, port, self.path = _target(url)
        address = resolve(self.host, port, self.policy)[0]
        cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        self._conn = cls(address, self.host, port, timeout=self.policy.timeout)
        self._answered = False  # whether the open connection has carried a request already

    def post(self, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body`; the status. FetchRefused says why the request could not be made."""
        reused = self._answered
        try:
            return self._exchange(body, headers)
        except _CLOSED:
            self._drop()
            if not reused:
                raise FetchRefused(
                    f"Could not reach {self.host}: it closed the connection."
                ) from None
        # A kept-alive connection the server closed while idle: once more on a new one.
        try:
            return self._exchange(body, headers)
        except _CLOSED:
            self._drop()
            raise FetchRefused(f"Could not reach {self.host}: it closed the connection.") from None

    def _exchange(self, body: bytes, headers: Mapping[str, str]) -> int:
        deadline = time.monotonic() + self.policy.timeout
        try:
            self._conn.request(
                "POST",
                self.path,
                body=body,
                headers={**headers, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
            response = self._conn.getresponse()
            _read(response, self.policy, deadline)
        except _CLOSED:
            raise  # post() decides whether a new connection is worth a try
        except TimeoutError:
            self._drop()
            seconds = format(self.policy.timeout, "g")
            raise FetchRefused(f"{self.host} took longer than {seconds} seconds.") from None
        except ssl.SSLError as exc:
            self._drop()
            raise FetchRefused(
                f"The secure connection to {self.host} failed: {exc.reason}."
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise FetchRefused(f"Could not reach {self.host}: {exc}.") from None
        except FetchRefused:
            self._drop()  # a reply too large, left unread: the connection cannot be reused
            raise
        # http.client closes the socket itself when the server says "Connection: close"; the
        # next request then connects again, to the same pinned address.
        self._answered = self._conn.sock is not None
        return response.status

    def _drop(self) -> None:
        self._conn.close()
        self._answered = False

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it when routed:
# NAT64 (well-known and local-use) and the deprecated IPv4-compatible form ::a.b.c.d.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, NAT64, compatible, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped:
        return [address.ipv4_mapped]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return [low32]
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves
        return [low32]
    if address.sixtofour:
        return [address.sixtofour]
    if address.teredo:
        return list(address.teredo)  # the relay server and the (de-obfuscated) client
    return []


def check_address(address: IPAddress, policy: FetchPolicy) -> None:
    """Refuse addresses that are not on the public internet, unless the operator allows them.

    An IPv6 address that wraps an IPv4 one is judged by the IPv4 address too: otherwise
    `64:ff9b::7f00:1` (NAT64) or `2002:7f00:1::` (6to4) would reach 127.0.0.1.
    """
    for candidate in [address, *embedded_ipv4(address)]:
        if isinstance(candidate, ipaddress.IPv6Address) and candidate.ipv4_mapped:
            continue  # ::ffff:a.b.c.d is nothing but its IPv4 address, judged next
        if not _allowed(candidate, policy):
            raise FetchRefused(
                admin_gettext(
                    "%(address)s is a private, loopback or link-local address; Clarion fetches "
                    "only from public addresses (an operator can allow networks with "
                    "CLARION_ALLOW_PRIVATE_FETCH).",
                    address=address,
                )
            )


def _allowed(address: IPAddress, policy: FetchPolicy) -> bool:
    if address.is_global and not address.is_multicast and address not in _NAT64_LOCAL:
        return True
    return any(address in net for net in policy.allow_networks if net.version == address.version)


def resolve(host: str, port: int, policy: FetchPolicy) -> list[IPAddress]:
    """Every address the host resolves to, each checked; the connection uses one of these."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        problem = admin_gettext("Cannot find the server %(host)s: %(error)s.", host=host, error=exc)
        raise FetchRefused(problem) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise FetchRefused(admin_gettext("Cannot find the server %(host)s.", host=host))
    # All of them, not just the first: a name that also points inward is refused outright.
    for address in addresses:
        check_address(address, policy)
    return addresses


def _target(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise FetchRefused(
            admin_gettext(
                "Only http:// and https:// addresses can be fetched, not %(url)s.", url=repr(url)
            )
        )
    if parts.username or parts.password:
        raise FetchRefused(admin_gettext("Addresses with a user name or password are not fetched."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        problem = admin_gettext("The port in %(url)s is not a number.", url=repr(url))
        raise FetchRefused(problem) from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address already vetted, whatever DNS says by the time we connect."""

    def __init__(self, address: IPAddress, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)
        # As http.client's own connect does: it sends a request's headers and body in two
        # writes, and with Nagle's algorithm the body would wait for the server's delayed ACK
        # of the headers (~40 ms on Linux) before leaving.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """TLS to a vetted address, verifying the certificate for the host name."""

    def connect(self) -> None:
        super().connect()
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)


def _get_once(
    url: str, policy: FetchPolicy, deadline: float, accept: str, extra: Mapping[str, str]
) -> tuple[http.client.HTTPResponse, bytes]:
    scheme, host, port, path = _target(url)
    address = resolve(host, port, policy)[0]
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchRefused(_too_slow(host, policy))
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(address, host, port, timeout=remaining)
    try:
        conn.request(
            "GET",
            path,
            headers={
                **extra,
                "User-Agent": USER_AGENT,
                "Accept": accept,
                "Accept-Encoding": "identity",
            },
        )
        response = conn.getresponse()
        body = (
            b""
            if response.status in {301, 302, 303, 304, 307, 308}
            else _read(response, policy, deadline)
        )
        return response, body
    except TimeoutError:
        raise FetchRefused(_too_slow(host, policy)) from None
    except ssl.SSLError as exc:
        problem = admin_gettext(
            "The secure connection to %(host)s failed: %(error)s.", host=host, error=exc.reason
        )
        raise FetchRefused(problem) from None
    except (OSError, http.client.HTTPException) as exc:
        problem = admin_gettext("Could not fetch from %(host)s: %(error)s.", host=host, error=exc)
        raise FetchRefused(problem) from None
    finally:
        conn.close()


def _read(response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchRefused(_too_big(policy))
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > policy.max_bytes:
            raise FetchRefused(_too_big(policy))
        chunks.append(chunk)
        # The socket timeout bounds each read; this bounds a server that drips bytes slowly.
        if time.monotonic() > deadline:
            raise TimeoutError
    return b"".join(chunks)


def _too_big(policy: FetchPolicy) -> str:
    return admin_gettext(
        "The file is larger than the %(kb)s KB Clarion accepts.", kb=policy.max_bytes // 1024
    )


def _too_slow(host: str, policy: FetchPolicy) -> str:
    seconds = format(policy.timeout, "g")
    return admin_gettext("%(host)s took longer than %(n)s seconds.", host=host, n=seconds)
