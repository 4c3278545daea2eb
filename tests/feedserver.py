"""A blog on loopback for feed tests: routes set by the test, ETag / Last-Modified and 304."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers import tiny_png

PNG = tiny_png()
LAST_MODIFIED = formatdate(1_800_000_000, usegmt=True)


def rss(*items: str, title: str = "Free Them All blog") -> bytes:
    """An RSS 2.0 document with the given <item> elements."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        f"<title>{title}</title><link>https://blog.example.org/</link>"
        f"<description>News</description>{''.join(items)}</channel></rss>"
    ).encode()


def item(guid: str, title: str, summary: str = "", image: str = "", day: int = 1) -> str:
    """One RSS item; `summary` is HTML (escaped into the description as feeds do)."""
    escaped = summary.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    media = f'<media:content url="{image}" medium="image"/>' if image else ""
    return (
        f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>'
        f"<link>https://blog.example.org/{guid}</link><description>{escaped}</description>"
        f"<pubDate>Mon, {day:02d} Jan 2029 10:00:00 GMT</pubDate>{media}</item>"
    )


@dataclass
class Route:
    """What a path answers: a body, a redirect, an error status, or a huge or slow reply."""

    body: bytes = b""
    content_type: str = "application/rss+xml"
    status: int = 200
    location: str = ""
    huge: int = 0  # bytes streamed without a Content-Length
    slow: bool = False


@dataclass
class Request:
    """A request the blog received."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        blog: FeedServer = self.server.blog  # type: ignore[attr-defined]
        blog.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = blog.routes.get(self.path)
        if route is None:
            self.send_error(404)
        elif route.slow:
            blog.release.wait(10)  # never answers within the test's fetch timeout
        elif route.location:
            self.send_response(route.status or 302)
            self.send_header("Location", route.location)
            self.end_headers()
        elif route.huge:
            self._stream(route)
        else:
            self._answer(route)

    def _answer(self, route: Route) -> None:
        etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
        if route.status == 200 and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(route.body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(route.body)

    def _stream(self, route: Route) -> None:
        self.send_response(200)
        self.send_header("Content-Type", route.content_type)
        self.end_headers()
        chunk = b"<item><title>x</title></item>" * 1000
        try:
            self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
            for _ in range(route.huge // len(chunk) + 1):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher hung up once it had enough: what the test wants


class FeedServer:
    """Serves `routes` on 127.0.0.1 from a thread; records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.blog = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
