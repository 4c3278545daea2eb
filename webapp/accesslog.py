"""The web process's logs name the route a request took, never what identifies a reader.

gunicorn's access log writes each request line as it came: a reader's preferences, data download,
confirmation and click links carry their tokens in the path, and the line's other fields hold
the client's address, browser and the page they came from. Kept by journald or a process
manager, that would outlive every retention rule Clarion keeps (README "What Clarion keeps about
readers") and hand anyone who reads the log a reader's links. The log keeps what running the site
needs: the method, the route's pattern (`/preferences/<token>`), the status, the size and the
time taken. Flask's own log of an unhandled error names the route the same way.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from flask import Flask, Response, request
from gunicorn import glogging

ROUTE_KEY = "clarion.route"  # set in the WSGI environ by the app, read by the logger below
UNROUTED = "-"  # a path no route matched (a mistyped token is still a token)
_WITHHELD = "-"
# gunicorn's own atoms that carry the path, the query, the client or what the client sent.
_REQUEST_ATOMS = ("h", "l", "u", "U", "q", "f", "a")


def mark_route(environ: dict[str, Any], route: str) -> None:
    """Name the route that answers this request, for the request log."""
    environ[ROUTE_KEY] = route


def init_app(app: Flask) -> None:
    """Have every response name its route in the environ (after error handlers too)."""

    @app.after_request
    def _name_route(response: Response) -> Response:
        mark_route(request.environ, route_of_request())
        return response


def route_of_request() -> str:
    """The pattern of the route answering the current request, or UNROUTED."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNROUTED


class App(Flask):
    """Flask, whose log of an unhandled error names the route instead of the path."""

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        """Log the error with its traceback, as Flask does, under the route's pattern."""
        self.logger.error(
            "Exception on %s [%s]", route_of_request(), request.method, exc_info=exc_info
        )


class Logger(glogging.Logger):
    """gunicorn's logger (`--logger-class webapp.accesslog.Logger`) whose access log line has
    the route in place of the path and nothing of the client."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
        """gunicorn's atoms with the request's own details withheld."""
        # Built here rather than filtered from gunicorn's: those hold every request and response
        # header and environ variable ({name}i, {name}o, {name}e), which may hold anything (a
        # cookie, a redirect's target with a reader's token, the client's address), and making
        # them took a third of a line's cost (28 -> 18 µs). A format naming them prints "-".
        route = environ.get(ROUTE_KEY, UNROUTED)
        method = environ.get("REQUEST_METHOD")
        protocol = environ.get("SERVER_PROTOCOL")
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        seconds, micros = request_time.seconds, request_time.microseconds
        return {
            **dict.fromkeys(_REQUEST_ATOMS, _WITHHELD),
            "t": self.now(),
            "r": f"{method} {route} {protocol}",
            "s": status,
            "m": method,
            "U": route,
            "H": protocol,
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "T": seconds,
            "D": seconds * 1_000_000 + micros,
            "M": seconds * 1000 + micros // 1000,
            "L": f"{seconds}.{micros:06d}",
            "p": f"<{os.getpid()}>",
        }
