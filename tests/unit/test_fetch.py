"""The safe fetcher refuses inward addresses (after DNS and redirects), big or slow replies."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clarion.alerts import media
from clarion.errors import FetchRefused, ValidationError
from clarion.fetch import FetchPolicy, Poster, check_address, fetch
from tests.helpers import tiny_png

PNG = tiny_png()
LOOPBACK = FetchPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),), timeout=2)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/image.png": (200, {"Content-Type": "image/png"}, PNG),
            "/page": (200, {"Content-Type": "text/html"}, b"<svg onload=alert(1)>"),
            "/to-image": (302, {"Location": "/image.png"}, b""),
            "/to-other-loopback": (302, {"Location": f"http://127.0.0.2:{port}/image.png"}, b""),
            "/to-v6-loopback": (302, {"Location": f"http://[::1]:{port}/image.png"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/big": (200, {"Content-Type": "image/png"}, PNG + b"\x00" * 300_000),
            "/missing": (404, {}, b"no"),
        }
        if self.path == "/slow":
            self.server.release.wait(5)  # never answers within the test's time limit
            return
        status, headers, body = routes[self.path]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.release.set()
    httpd.shutdown()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.4",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        # IPv6 forms that carry a private IPv4 address inside them (issue 12, #12)
        "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix
        "::7f00:1",  # IPv4-compatible ::127.0.0.1
        "::a00:1",  # IPv4-compatible ::10.0.0.1
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:c0a8:1::1",  # 6to4 around 192.168.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_inward_addresses_are_refused_by_default(address):
    with pytest.raises(FetchRefused, match="CLARION_ALLOW_PRIVATE_FETCH"):
        check_address(ipaddress.ip_address(address), FetchPolicy())


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822"]
)
def test_public_address_passes(address):
    check_address(ipaddress.ip_address(address), FetchPolicy())


def test_an_allowed_ipv4_network_also_allows_its_nat64_form():
    policy = FetchPolicy(allow_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    with pytest.raises(FetchRefused):
        check_address(ipaddress.ip_address("64:ff9b::a00:1"), FetchPolicy())
    check_address(ipaddress.ip_address("::ffff:10.0.0.1"), policy)
    check_address(ipaddress.ip_address("64:ff9b::a00:1"), policy)


def test_loopback_server_refused_by_default(server):
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1"):
        fetch(f"{server}/image.png", FetchPolicy(timeout=2))


def test_name_resolving_inward_is_refused_after_dns(server):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(FetchRefused, match="private, loopback"):
        fetch(f"http://localhost:{port}/image.png", FetchPolicy(timeout=2))
    # 2130706433 is 127.0.0.1 written as one number.
    with pytest.raises(FetchRefused, match="private, loopback"):
        fetch(f"http://2130706433:{port}/image.png", FetchPolicy(timeout=2))


def test_allowed_network_is_fetched_and_redirects_followed(server):
    result = fetch(f"{server}/to-image", LOOPBACK)
    assert result.body == PNG and result.content_type == "image/png"
    assert result.url.endswith("/image.png")


@pytest.mark.parametrize("path", ["/to-other-loopback", "/to-v6-loopback"])
def test_redirect_to_a_network_not_allowed_is_refused(server, path):
    with pytest.raises(FetchRefused, match="private, loopback"):
        fetch(f"{server}{path}", LOOPBACK)


def test_redirect_loop_size_time_and_status_limits(server):
    with pytest.raises(FetchRefused, match="Too many redirects"):
        fetch(f"{server}/loop", LOOPBACK)
    small = FetchPolicy(LOOPBACK.allow_networks, max_bytes=100_000, timeout=2)
    with pytest.raises(FetchRefused, match="larger than"):
        fetch(f"{server}/big", small)
    quick = FetchPolicy(LOOPBACK.allow_networks, timeout=0.3)
    with pytest.raises(FetchRefused, match="longer than"):
        fetch(f"{server}/slow", quick)
    with pytest.raises(FetchRefused, match="404"):
        fetch(f"{server}/missing", LOOPBACK)


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.org/x", "http://user:pw@example.org/", "gopher://x"],
)
def test_other_schemes_and_credentials_are_refused(url):
    with pytest.raises(FetchRefused):
        fetch(url, FetchPolicy(timeout=1))


def test_image_is_copied_once_under_its_content_hash(server, tmp_path):
    base = "https://alerts.example.org"
    url = media.copy_image(f"{server}/image.png", tmp_path, base, LOOPBACK)
    name = url.rsplit("/", 1)[1]
    assert media.is_own_media(url, base) and name.endswith(".png")
    assert (tmp_path / "media" / name).read_bytes() == PNG
    # Our own URL is kept as is; the same bytes keep the same name.
    assert media.copy_image(url, tmp_path, base, LOOPBACK) == url
    assert media.copy_image(f"{server}/to-image", tmp_path, base, LOOPBACK) == url


def test_non_images_and_refusals_become_field_errors(server, tmp_path):
    with pytest.raises(ValidationError) as caught:
        media.copy_image(f"{server}/page", tmp_path, "https://a.example", LOOPBACK)
    assert "not a PNG" in caught.value.errors["image_url"]
    with pytest.raises(ValidationError) as caught:
        media.copy_image(f"{server}/image.png", tmp_path, "https://a.example", FetchPolicy())
    assert "could not be copied" in caught.value.errors["image_url"]


@pytest.mark.parametrize(
    ("raw", "allowed", "refused"),
    [
        ("", [], ["127.0.0.1"]),
        ("true", ["127.0.0.1", "::1", "10.0.0.1"], []),
        ("10.0.0.0/8, 192.168.1.20", ["10.9.9.9", "192.168.1.20"], ["192.168.1.21", "127.0.0.1"]),
    ],
)
def test_allow_private_fetch_setting(monkeypatch, tmp_path, raw, allowed, refused):
    from clarion.config import load_settings

    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", raw)
    s = load_settings()
    policy = FetchPolicy(s.allow_private_fetch)
    for address in allowed:
        check_address(ipaddress.ip_address(address), policy)
    for address in refused:
        with pytest.raises(FetchRefused):
            check_address(ipaddress.ip_address(address), policy)


def test_allow_private_fetch_rejects_nonsense(monkeypatch, tmp_path):
    from clarion.config import load_settings
    from clarion.errors import ConfigError

    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "the office")
    with pytest.raises(ConfigError, match="CLARION_ALLOW_PRIVATE_FETCH"):
        load_settings()


class KeptAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 answers to POSTs; /close says so and closes, /drop closes without saying (as a
    server does to an idle kept-alive connection)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.client_address[1], body))
        self.send_response(204)
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        if self.path == "/drop":
            self.close_connection = True


@pytest.fixture
def keep_alive_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeptAlive)
    httpd.daemon_threads = True
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path, connections", [("/keep", 1), ("/close", 3), ("/drop", 3)])
def test_a_poster_keeps_one_connection_and_makes_a_new_one_when_the_server_closes_it(
    keep_alive_server, path, connections
):
    url = f"http://127.0.0.1:{keep_alive_server.server_address[1]}{path}"
    with Poster(url, LOOPBACK) as poster:
        statuses = [poster.post(f"m{n}".encode(), {}) for n in range(3)]
    assert statuses == [204, 204, 204]
    seen = keep_alive_server.seen
    assert [body for _, body in seen] == [b"m0", b"m1", b"m2"]  # each once, in order
    assert len({port for port, _ in seen}) == connections


def test_a_poster_checks_the_address_once_and_keeps_to_it(keep_alive_server, monkeypatch):
    port = keep_alive_server.server_address[1]
    with pytest.raises(FetchRefused):
        Poster(f"http://127.0.0.1:{port}/keep", FetchPolicy())  # loopback: refused
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        return real("127.0.0.1" if host == "hooks.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with Poster(f"http://hooks.example:{port}/close", LOOPBACK) as poster:
        assert [poster.post(b"x", {}) for _ in range(3)] == [204] * 3
    # Resolved once for three connections: each new one goes to the address checked then.
    assert looked_up.count("hooks.example") == 1


def test_a_poster_sends_without_waiting_for_delayed_acks(keep_alive_server):
    """http.client writes a request's headers and body apart: with Nagle's algorithm on, the
    body waits ~40 ms for the server's delayed ACK, for every request (the kept-alive
    connection of a batch made that each delivery's cost). Its own connect turns Nagle off;
    the pinned connection must too."""
    url = f"http://127.0.0.1:{keep_alive_server.server_address[1]}/keep"
    with Poster(url, LOOPBACK) as poster:
        assert poster.post(b"x", {}) == 204
        sock = poster._conn.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
