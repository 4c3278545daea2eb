"""One alert written in several languages, sent by a real Celery worker: each reader gets the
version in their language, else the primary (no version, an unfinished one, or a language
removed from CLARION_LANGUAGES since the alert was frozen)."""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from clarion import i18n, jobqueue
from clarion.alerts import campaigns
from clarion.config import get_settings, reset_settings
from clarion.delivery import dispatch, sending
from clarion.models import Alert, AlertStatus, Delivery, Subscriber
from clarion.tokens import CLICK, delivery_tokens
from tests.conftest import start_worker
from tests.faultsmtp import FaultServer
from tests.helpers import refresh
from tests.sendkit import make_audience, make_list
from tests.services import RedisServer

PHRASES = {
    "en": "Write to Ales today.",
    "be": "Напішыце Алесю сёння.",
    "ru": "Напишите Алесю сегодня.",
    "uk": "Напишіть Алесеві сьогодні.",
    "pl": "Napisz do Alesia dzisiaj.",
}
SUBJECTS = {
    "en": "1,000 days: write to Ales",
    "be": "1000 дзён: напішыце Алесю",
    "ru": "1000 дней: напишите Алесю",
    "uk": "1000 днів: напишіть Алесеві",
    "pl": "1000 dni: napisz do Alesia",
}


def body(code: str) -> str:
    # A link every version shares, and one of its own: the shared one keeps its index.
    return (
        f"{PHRASES[code]} [→](https://blog.example.org/write)\n\n"
        f"[More](https://blog.example.org/{code}/letter)"
    )


def version(code: str, unfinished: bool = False) -> dict:
    return {
        "subject": SUBJECTS[code],
        "preheader": "",
        "fields": {"body_md": body(code)},
        "unfinished": unfinished,
    }


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def sink(settings, backend, private_redis, tmp_path, monkeypatch):
    """An SMTP sink and a worker on private Redis; the worker no longer offers Ukrainian."""
    import tasks

    with FaultServer(keep=True) as server:
        env = {"CLARION_REDIS_URL": private_redis.url, "CLARION_SMTP_URL": server.url}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        previous = jobqueue.set_backend(tasks.publisher(tasks.make_celery(get_settings())))
        languages = ",".join(f"{c}={label}" for c, label in get_settings().languages if c != "uk")
        worker = start_worker(
            backend,
            tmp_path / "worker.log",
            extra_env={**env, "CLARION_LANGUAGES": languages},
        )
        try:
            yield server.handler, worker
        finally:
            worker.stop()
            jobqueue.set_backend(previous)


def parse(raw: bytes) -> tuple[email.message.EmailMessage, str, str]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return msg, msg.get_body(("html",)).get_content(), msg.get_body(("plain",)).get_content()


def test_each_reader_gets_their_own_version_else_the_primary(session, sink):
    handler, worker = sink
    alerts = make_list(session)
    readers = {code: make_audience(session, alerts, 1, prefix=code)[0] for code in PHRASES}
    for code, reader_id in readers.items():
        session.execute(update(Subscriber).where(Subscriber.id == reader_id).values(language=code))
    session.commit()
    alert = campaigns.create_draft(
        session,
        None,
        campaigns.Draft(
            kind="newsletter",
            subject=SUBJECTS["en"],
            fields={"body_md": body("en")},
            lists=[alerts.id],
            language="en",
            translations={
                "be": version("be"),
                "ru": version("ru"),
                "uk": version("uk"),  # the worker no longer offers uk: its readers get en
                "pl": version("pl", unfinished=True),
            },
        ),
    )
    assert campaigns.version_counts(session, alert) == {"en": 2, "be": 1, "ru": 1, "uk": 1}
    sending.start(session, alert)
    session.commit()
    assert sorted(alert.frozen_versions) == ["be", "ru", "uk"]
    dispatch.enqueue_dispatch(alert.id)
    deadline = time.monotonic() + 120
    while session.get(Alert, alert.id).status != AlertStatus.SENT:
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.2)
        refresh(session)
    alert = session.get(Alert, alert.id)

    expected = {"en": "en", "be": "be", "ru": "ru", "uk": "en", "pl": "en"}
    assert len(handler.messages) == len(expected)
    by_rcpt = {rcpt: raw for _from, rcpt, raw in handler.messages}
    write = alert.frozen_links.index("https://blog.example.org/write")
    for reader, got in expected.items():
        msg, html, text = parse(by_rcpt[f"{reader}0@example.org"])
        assert msg["Subject"] == SUBJECTS[got], reader
        assert msg["Content-Language"] == got, reader
        assert re.search(rf'<html lang="{got}"', html), (reader, html[:200])
        greeting = i18n.gettext("Hello %(name)s,", got, name="N0")
        # The text part says what the HTML part says: the same version, greeting and links.
        for part in (htmllib.unescape(html), text):
            assert PHRASES[got] in part and greeting in part, (reader, part[:300])
            others = [p for code, p in PHRASES.items() if code != got and p in part]
            assert others == [], reader
        row = select(Delivery.id).where(Delivery.subscriber_id == readers[reader])
        token = delivery_tokens(CLICK).encode(session.scalar(row))
        assert f"/r/{token}/{write}" in html and f"/r/{token}/{write}" in text
