"""/r/<token>/<n>: stored links only, 404 for forgeries, Redis only on the way, no click lost."""

from __future__ import annotations

import dataclasses
import inspect
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import event, func, select
from werkzeug.test import EnvironBuilder

from clarion.db import get_engine
from clarion.models import Click
from clarion.redisconn import get_redis
from clarion.tracking import clicks, eventstream, linkmap
from tests.helpers import refresh
from tests.integration.alertkit import frozen_alert, make_petition, make_readers, token_of

BLOG = "https://blog.example.org/2026/free-them"


@pytest.fixture
def sent(session, settings):
    """An alert with a blog link, a petition link and a second blog link, sent to 3 readers."""
    make_petition(session)
    readers = make_readers(session, 3)
    links = [BLOG, f"{settings.base_url}/p/free-them", "https://example.net/?a=1&b=2#top"]
    alert, deliveries = frozen_alert(session, links, readers)
    return alert, deliveries


def clicks_in(session) -> list[Click]:
    refresh(session)
    return list(session.scalars(select(Click).order_by(Click.id)))


def test_a_click_redirects_to_the_stored_link_and_is_recorded(client, session, sent):
    alert, deliveries = sent
    token = token_of(deliveries[1])
    response = client.get(f"/r/{token}/2")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.net/?a=1&b=2#top"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert eventstream.backlog() == 1
    assert eventstream.flush().clicks == 1
    [click] = clicks_in(session)
    assert (click.alert_id, click.delivery_id, click.link_index) == (alert.id, deliveries[1].id, 2)
    assert click.subscriber_id == deliveries[1].subscriber_id
    assert click.suspected_scanner is False
    assert eventstream.backlog() == 0


def test_a_click_does_not_touch_the_database(client, session, sent, settings):
    _alert, deliveries = sent
    client.get(f"/r/{token_of(deliveries[0])}/0")  # warm up this process's link cache
    statements = []
    engine = get_engine(settings.database_url)

    def count(*_args, **_kwargs):
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for delivery in deliveries:
            assert client.get(f"/r/{token_of(delivery)}/1").status_code == 302
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []


def test_when_redis_lost_the_map_the_database_fills_it_again(client, session, sent):
    _alert, deliveries = sent
    get_redis().flushdb()
    linkmap.forget_cached_links()
    response = client.get(f"/r/{token_of(deliveries[2])}/0")
    assert response.status_code == 302 and response.headers["Location"] == BLOG
    assert get_redis().exists(f"clarion:links:{deliveries[2].alert_id}")
    assert eventstream.flush().clicks == 1


def _altered(token: str) -> str:
    i = 7
    return token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1 :]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda t: _altered(t), id="one-character-altered"),
        pytest.param(lambda t: t[:-1], id="truncated"),
        pytest.param(lambda t: t + "a", id="extended"),
        pytest.param(lambda t: "a" * 26, id="forged"),
        pytest.param(lambda t: t[::-1], id="reversed"),
        pytest.param(lambda t: "1" * 26, id="not-base32"),
        pytest.param(lambda t: "%00" + t[3:], id="nul"),
    ],
)
def test_forged_and_altered_tokens_get_404_and_record_nothing(client, sent, make_token):
    _alert, deliveries = sent
    response = client.get(f"/r/{make_token(token_of(deliveries[0]))}/0")
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert eventstream.backlog() == 0


def test_a_token_for_a_delivery_that_does_not_exist_gets_404(client, sent):
    from clarion.tokens import CLICK, delivery_tokens

    assert client.get(f"/r/{delivery_tokens(CLICK).encode(999_999)}/0").status_code == 404
    assert eventstream.backlog() == 0


def test_the_upper_case_spelling_of_a_token_still_works(client, sent):
    _alert, deliveries = sent
    response = client.get(f"/r/{token_of(deliveries[0]).upper()}/0")
    assert response.status_code == 302 and response.headers["Location"] == BLOG


@pytest.mark.parametrize(
    "tail",
    [
        "3",  # n past the end
        "99999",
        "-1",  # negative
        "-0",
        "+1",
        "1e0",
        "0x1",
        " 1",
        "1 ",
        "\u0661",  # Arabic-Indic digit one: int() would accept it
        "\uff11",  # full-width digit one
        "http://evil.example",
        "https:%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/evil.example",
        "//evil.example",
        "\\\\evil.example",
        "%5C%5Cevil.example",
        "0/..%2F..%2Fevil.example",
        "0%2F%2Fevil.example",
        "0%00",
        "0@evil.example",
        "javascript:alert(1)",
        "%30%2E%2E",
        "123456789012345678901234567890",
    ],
)
def test_open_redirect_attempts_get_404(client, sent, tail):
    _alert, deliveries = sent
    response = client.get(f"/r/{token_of(deliveries[0])}/{tail}")
    assert response.status_code == 404, response.headers.get("Location")
    assert "Location" not in response.headers
    assert eventstream.backlog() == 0


def _hostile_names() -> list[str]:
    """Query names a redirect might read: the route's own arguments and the follower's
    parameters, each in other cases, and names made up for this run (no list to outguess)."""
    own = {"token", "n", *inspect.signature(clicks.follow).parameters}
    made_up = {secrets.token_urlsafe(6) for _ in range(5)}
    return sorted({v for name in own for v in (name, name.upper(), name.title())} | made_up)


def _stored(location: str) -> tuple:
    """A redirect target less the reader token, which is fresh on every click."""
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "r"]
    return parts.scheme, parts.netloc, parts.path, query, parts.fragment


class ReadLog(dict):
    """A WSGI environ that remembers which keys were read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_the_click_path_reads_only_the_path_method_and_scheme(app, sent):
    """Whatever a request carries (any query name, header or cookie), a click is answered from
    the path alone: checked on what the redirecting middleware reads, not on a list of names."""
    _alert, deliveries = sent
    middleware = app.wsgi_app
    while type(middleware).__name__ != "TrackedLinks":
        middleware = middleware.app
    environ = ReadLog(
        EnvironBuilder(
            path=f"/r/{token_of(deliveries[0])}/0",
            query_string={"next": "https://evil.example"},
            headers={"Referer": "https://evil.example", "Cookie": "to=https://evil.example"},
        ).get_environ()
    )
    replies = []
    body = middleware(environ, lambda status, headers: replies.append((status, dict(headers))))
    assert b"".join(body) == b""
    assert replies[0][0] == "302 Found" and replies[0][1]["Location"] == BLOG
    assert environ.read == {"PATH_INFO", "REQUEST_METHOD", "wsgi.url_scheme"}


@pytest.mark.parametrize("n", [0, 1])
def test_nothing_from_the_request_reaches_the_target(client, sent, settings, n):
    _alert, deliveries = sent
    token = token_of(deliveries[0])
    expected = _stored(client.get(f"/r/{token}/{n}").headers["Location"])
    hostile = "https://evil.example/x"
    names = _hostile_names()
    query = urlencode([(name, hostile) for name in names])
    headers = {"Referer": hostile, "X-Forwarded-Host": "evil.example", "Host": "evil.example"}
    for suffix in (f"?{query}", f"?{query}#{hostile}", f"?{hostile}"):
        response = client.get(f"/r/{token}/{n}{suffix}", headers=headers)
        assert response.status_code == 302, suffix
        location = response.headers["Location"]
        # The stored link (a petition link with a fresh reader token), and nothing else.
        assert _stored(location) == expected and "evil" not in location
    for tail in (f"{n};{hostile}", f"{n}/{hostile}", f"{n}%3F{query}"):
        response = client.get(f"/r/{token}/{tail}")
        assert response.status_code == 404 and "Location" not in response.headers, tail


def test_percent_encoded_index_reaches_the_same_stored_link(client, sent):
    # %30 is "0": the server decodes the path before routing, so this is link 0, and only it.
    _alert, deliveries = sent
    response = client.get(f"/r/{token_of(deliveries[0])}/%30")
    assert response.status_code == 302 and response.headers["Location"] == BLOG


def test_petition_links_get_a_fresh_reader_token_and_a_source(client, sent, settings):
    _alert, deliveries = sent
    response = client.get(f"/r/{token_of(deliveries[0])}/1")
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{settings.base_url}/p/free-them"
    query = parse_qs(target.query)
    assert query["source"] == ["email"]
    assert len(query["r"]) == 1 and token_of(deliveries[0]) in query["r"][0]
    # Other links are left exactly as stored: no token leaves for another site.
    assert client.get(f"/r/{token_of(deliveries[0])}/0").headers["Location"] == BLOG


def test_a_source_the_editor_put_in_the_link_is_kept(client, session, settings):
    make_petition(session, slug="keep-source")
    readers = make_readers(session, 1)
    _alert, [delivery] = frozen_alert(
        session, [f"{settings.base_url}/p/keep-source?source=may-alert"], readers
    )
    target = client.get(f"/r/{token_of(delivery)}/0").headers["Location"]
    assert parse_qs(urlsplit(target).query)["source"] == ["may-alert"]


def test_clicks_right_after_delivery_are_flagged_as_scanners(client, session):
    readers = make_readers(session, 2)
    _alert, fresh = frozen_alert(session, [BLOG], readers[:1], sent_ago=timedelta(seconds=1))
    _alert2, old = frozen_alert(session, [BLOG], readers[1:], sent_ago=timedelta(minutes=5))
    client.get(f"/r/{token_of(fresh[0])}/0")
    client.get(f"/r/{token_of(old[0])}/0")
    eventstream.flush()
    flags = {c.delivery_id: c.suspected_scanner for c in clicks_in(session)}
    assert flags == {fresh[0].id: True, old[0].id: False}


def test_flushing_twice_the_same_entries_stores_them_once(client, session, sent):
    """A flusher that died after committing leaves its entries pending; the next one re-reads."""
    _alert, deliveries = sent
    for delivery in deliveries:
        client.get(f"/r/{token_of(delivery)}/0")
    client_redis = get_redis()
    eventstream._ensure_group(client_redis)
    # A flusher reads the entries and writes them, then dies before acknowledging.
    entries = eventstream._read_new(client_redis, "dead-flusher")
    from clarion.db import session_scope

    with session_scope() as s:
        eventstream._write(s, entries, eventstream.FlushResult())
    assert eventstream.backlog() == 3
    # The next flush claims what the dead one left, inserts nothing twice, and clears it.
    result = eventstream.flush(claim_idle_ms=0)
    assert result.events == 3
    assert len(clicks_in(session)) == 3
    assert eventstream.backlog() == 0
    refresh(session)
    assert session.scalar(select(func.count(func.distinct(Click.event_id)))) == 3


def test_a_followed_click_cannot_be_redirected_afterwards(sent, settings):
    """What follow() resolved is final: nothing downstream may point it elsewhere."""
    _alert, deliveries = sent
    followed = clicks.follow(token_of(deliveries[0]), "0", settings.base_url)
    assert followed.url == BLOG and followed.link_index == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        followed.url = "https://evil.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("stored", "target"),
    [
        # A reader token already in the stored link (copied from someone's own mail into an
        # alert) is dropped: every reader gets only their own.
        (
            "https://site.example/p/free?r=someone-else&utm=&source=tg",
            "https://site.example/p/free?utm=&source=tg&r=mine",
        ),
        ("https://site.example/p/free", "https://site.example/p/free?source=email&r=mine"),
    ],
)
def test_a_petition_link_carries_only_this_reader_s_token(stored, target):
    assert clicks.with_reader_token(stored, "mine") == target
