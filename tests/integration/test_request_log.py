"""The web process's request log: the route a request took, never a reader's token or client.

The whole path (a real gunicorn from the Procfile) is in test_up.py; here each part on its own:
what the app names, and what the logger writes for a request full of things it must not.
"""

from __future__ import annotations

import datetime
import logging
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import SafeAtoms
from werkzeug.test import EnvironBuilder

from tests.integration.alertkit import frozen_alert, make_petition, make_readers, token_of
from webapp.accesslog import ROUTE_KEY, UNROUTED, Logger

TOKEN = "Zm9yLWEtcmVhZGVyLW9ubHk.signed"


def _line(environ: dict, fmt: str | None = None) -> str:
    config = Config()
    logger = Logger(config)
    response = SimpleNamespace(
        status="302 Found",
        sent=0,
        headers=[("Location", f"https://example.org/p/free?t={TOKEN}")],
    )
    request = SimpleNamespace(
        headers=[("User-Agent", "ReaderBrowser/1.0"), ("Cookie", "clarion_session=secret")]
    )
    atoms = logger.atoms(response, request, environ, datetime.timedelta(milliseconds=12))
    return (fmt or config.access_log_format) % SafeAtoms(atoms)


def _environ(**extra) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/preferences/{TOKEN}?lang=be",
        "PATH_INFO": f"/preferences/{TOKEN}",
        "QUERY_STRING": "lang=be",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "198.51.100.23",
        "HTTP_USER_AGENT": "ReaderBrowser/1.0",
        "HTTP_REFERER": f"https://mail.example/read?token={TOKEN}",
        **extra,
    }


def test_the_line_names_the_route_and_withholds_the_token_and_the_client():
    line = _line(_environ(**{ROUTE_KEY: "/preferences/<token>"}))
    assert '"GET /preferences/<token> HTTP/1.1" 302' in line
    for secret in (TOKEN, "198.51.100.23", "ReaderBrowser", "mail.example", "lang=be"):
        assert secret not in line


def test_a_format_asking_for_headers_the_path_or_the_environ_gets_dashes():
    fmt = "%(U)s %(q)s %(h)s %({user-agent}i)s %({cookie}i)s %({location}o)s %({remote_addr}e)s"
    assert _line(_environ(), fmt) == f"{UNROUTED} - - - - - -"


def test_the_atoms_kept_say_what_gunicorns_own_say():
    from gunicorn.glogging import Logger as GunicornLogger

    environ = _environ(**{ROUTE_KEY: "/preferences/<token>"})
    response = SimpleNamespace(status="302 Found", sent=1234, headers=[])
    request = SimpleNamespace(headers=[])
    took = datetime.timedelta(seconds=2, microseconds=34567)
    ours = Logger(Config()).atoms(response, request, environ, took)
    theirs = GunicornLogger(Config()).atoms(response, request, environ, took)
    withheld = {"h", "l", "u", "q", "f", "a"}
    assert set(ours) == {k for k in theirs if not k.startswith("{")}
    assert all(ours[k] == "-" for k in withheld)
    same = set(ours) - withheld - {"r", "U", "t"}  # t: the clock moved on
    assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}
    assert (ours["r"], ours["U"]) == ("GET /preferences/<token> HTTP/1.1", "/preferences/<token>")


def _served(app, path: str) -> tuple[str, dict]:
    """Call the app as gunicorn does, with an environ it keeps afterwards."""
    environ = EnvironBuilder(path=path).get_environ()
    status = []
    body = app(environ, lambda s, headers, exc_info=None: status.append(s))
    b"".join(body)
    return status[0], environ


def test_the_app_names_the_route_it_took_or_none(app):
    status, environ = _served(app, f"/preferences/{TOKEN}")
    assert environ[ROUTE_KEY] == "/preferences/<token>", status
    status, environ = _served(app, f"/no-such-page/{TOKEN}")
    assert status.startswith("404")
    assert environ[ROUTE_KEY] == UNROUTED


def test_a_click_answered_below_flask_names_its_route(app, session):
    make_petition(session)
    _, [delivery] = frozen_alert(
        session, ["https://blog.example.org/"], make_readers(session, 1)
    )
    token = token_of(delivery)
    status, environ = _served(app, f"/r/{token}/0")
    assert status.startswith("302")
    assert environ[ROUTE_KEY] == "/r/<token>/<n>"


def test_an_unhandled_error_is_logged_under_its_route_not_its_path(app, caplog):
    @app.route("/broken/<token>")
    def broken(token):
        raise RuntimeError("something went wrong")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: logged, then a 500 page
    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        status, _ = _served(app, f"/broken/{TOKEN}")
    assert status.startswith("500")
    assert "Exception on /broken/<token> [GET]" in caplog.text
    assert "something went wrong" in caplog.text  # the traceback is kept
    assert TOKEN not in caplog.text
