"""The click path, /r/<token>/<n>, answered below Flask: it is the one hot public URL.

A Flask request (context, session, routing, response object) costs about twice what the click
itself does (token, one Redis round trip), so a redirect is answered here with the same
security headers Flask adds. Anything that is not a valid click — a forged token, an unknown
link, a stray path — goes on to Flask, which has no such route and answers with its 404 page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from clarion.errors import NotFound
from clarion.tracking import clicks
from webapp.accesslog import mark_route
from webapp.security import standard_headers

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]
PREFIX = "/r/"


class TrackedLinks:
    """WSGI middleware that redirects valid clicks and hands everything else to the app."""

    def __init__(self, app: WSGIApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
            token, slash, n = path[len(PREFIX) :].partition("/")
            if slash:
                try:
                    followed = clicks.follow(token, n, self.base_url)
                except NotFound:
                    pass
                else:
                    mark_route(environ, "/r/<token>/<n>")
                    return self._redirect(followed.url, environ, start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _redirect(url: str, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        headers = [
            ("Location", url),
            ("Content-Length", "0"),
            # Every click must reach us to be counted; petition links carry a fresh reader token.
            ("Cache-Control", "no-store"),
            *standard_headers(environ.get("wsgi.url_scheme") == "https"),
        ]
        start_response("302 Found", headers)
        return [b""]
