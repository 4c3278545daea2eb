"""Deliverability of every mail Clarion sends, as it left the real send path: each alert kind
through the delivery engine and each transactional mail through the mailer, with Cyrillic
content and an image, scored by Debian's SpamAssassin (local rules only) at 1.0 or less, its
HTML part within Gmail's 102 KB, and signed by both keys for dkimpy and Mail::DKIM."""

from __future__ import annotations

import email
import email.policy
import io

import pytest
from PIL import Image
from sqlalchemy import select

from clarion import jobqueue
from clarion.actions import petition_notices
from clarion.alerts import media
from clarion.audience import disclosure, notices, subscribers
from clarion.bounces.refusals import BatchRefusals
from clarion.config import get_settings, reset_settings
from clarion.db import utcnow
from clarion.delivery import dispatch, sending, testsend
from clarion.models import (
    Alert,
    AlertKind,
    Delivery,
    NoticeMail,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from clarion.tokens import NOTICE_VERP, VERP, delivery_tokens
from tests.dkimcheck import dkimpy_results, key_records, mail_dkim
from tests.faultsmtp import FaultServer
from tests.helpers import refresh
from tests.integration.alertkit import make_petition
from tests.sendkit import InlineQueue, make_list, write_keys
from tests.spamcheck import spamassassin

MAX_SCORE = 1.0
MAX_HTML = 102 * 1024  # Gmail clips a message whose HTML is larger
WHY = (
    "Алесь Бяляцкі, лаўрэат Нобелеўскай прэміі міру, сядзіць у калоніі ўжо больш за тысячу дзён. "  # noqa: RUF001
    "Напішыце яму ліст: кожнае слова падтрымкі даходзіць."
)


def _image(settings) -> str:
    """A photo-like PNG stored as Clarion's own media; its public URL."""
    picture = Image.new("RGB", (1200, 600), (40, 70, 120))
    for x in range(0, 1200, 40):
        picture.paste((200, 180, 60), (x, 250, x + 20, 350))
    data = io.BytesIO()
    picture.save(data, "PNG")
    name = media.store_image(data.getvalue(), settings.instance_dir)
    return media.media_url(settings.base_url, name)


def _alert_fields(image: str) -> dict[AlertKind, tuple[str, dict]]:
    figure = f"![Алесь Бяляцкі]({image})"
    return {
        AlertKind.NEWSLETTER: (
            "Навіны тыдня: 1000 дзён за кратамі",
            {"body_md": f"## Тысяча дзён\n\n{figure}\n\n{WHY}\n\n**Дзякуй**, што вы з намі."},
        ),
        AlertKind.NEW_POST: (
            "Новы артыкул: лісты палітвязням",
            {
                "post_url": "https://blog.example.org/lists",
                "title": "Як напісаць ліст палітвязню",
                "excerpt": WHY,
                "image_url": image,
            },
        ),
        AlertKind.PETITION: (
            "Падпішыце петыцыю за вызваленне",
            {
                "petition_url": "https://news.example.org/p/free",
                "petition_title": "Вызваліце Алеся Бяляцкага",
                "target": "Міністр юстыцыі",
                "why": f"{figure}\n\n{WHY}",
            },
        ),
        AlertKind.HASHTAG_DAY: (
            "Дзень хэштэга #СвабодуАлесю",
            {
                "hashtags": "#СвабодуАлесю",
                "action_date": "2031-06-06",
                "action_time": "18:00",
                "action_timezone": "Europe/Minsk",
                "intro": f"{figure}\n\n{WHY}",
                "share_url": "https://news.example.org/ales",
                "suggested_post": "Тысяча дзён — гэта занадта. #СвабодуАлесю",
            },
        ),
    }


@pytest.fixture
def configure(settings, monkeypatch, tmp_path):
    keys = write_keys(tmp_path)

    def apply(server: FaultServer):
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        monkeypatch.setenv("CLARION_SITE_NAME", "Свабода")
        monkeypatch.setenv("CLARION_DKIM_DOMAIN", "clarion.test")
        monkeypatch.setenv("CLARION_DKIM_KEYS", f"rsa2026:{keys['rsa']},ed2026:{keys['ed25519']}")
        reset_settings()
        return get_settings()

    return apply


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


def _send_alerts(session, queue, settings, alerts_list) -> None:
    for kind, (subject, fields) in _alert_fields(_image(settings)).items():
        alert = Alert(
            kind=kind,
            name=subject,
            subject=subject,
            preheader="Тысяча дзён за кратамі — дзейнічайце сёння",
            fields=fields,
            audience={"lists": [alerts_list.id], "languages": ["be"]},
            sender_list_id=alerts_list.id,
        )
        session.add(alert)
        session.commit()
        sending.start(session, alert)
        session.commit()
        dispatch.enqueue_dispatch(alert.id)
        queue.drain(timeout=60)
        refresh(session)


def _send_transactional(session, lists, reader, make_editor) -> None:
    refusals = BatchRefusals()
    outcome = subscribers.subscribe(
        session,
        subscribers.SubscribeRequest(
            "ganna@example.org", [lists["news"].id], name="Ганна", language="be"
        ),
    )
    session.commit()
    assert notices.send_confirmation(session, outcome.consent_id, refusals)
    petition = make_petition(
        session, title="Вызваліце Алеся Бяляцкага", body_md=WHY, require_confirmation=True
    )
    signature = Signature(
        petition_id=petition.id,
        email="sig@example.org",
        name="Сяргей",
        language="be",
        created_at=utcnow(),
        mail_due_at=utcnow(),  # its confirmation mail owed, as signing leaves it
    )
    session.add(signature)
    session.commit()
    assert petition_notices.send_signature_confirmation(session, signature.id, refusals)
    assert disclosure.send_data_link(session, reader.id, refusals)
    editor, _ = make_editor("editor")
    newsletter = session.scalar(select(Alert).where(Alert.kind == AlertKind.NEWSLETTER))
    testsend.send_test(session, editor, newsletter, "redaktar@example.org", None)
    session.commit()


def _name(session, envelope_from: str) -> str:
    """Which mail a captured message is, from the token of its VERP address."""
    token = envelope_from.split("+", 1)[1].split("@", 1)[0]
    try:
        delivery = session.get(Delivery, delivery_tokens(VERP).decode(token))
        return f"alert {session.get(Alert, delivery.alert_id).kind.value}"
    except Exception:
        return f"mail {session.get(NoticeMail, delivery_tokens(NOTICE_VERP).decode(token)).kind}"


@pytest.mark.timeout(300)
def test_every_mail_scores_low_fits_gmail_and_verifies(
    session, lists, configure, queue, make_editor, tmp_path
):
    alerts_list = make_list(
        session,
        "urgent",
        name="Тэрміновыя акцыі",
        from_name="Свабода",
        from_email="news@clarion.test",
    )
    reader = Subscriber(email="ales@example.org", name="Алесь", language="be")
    session.add(reader)
    session.flush()
    session.add(
        Subscription(
            subscriber_id=reader.id, list_id=alerts_list.id, status=SubscriptionStatus.SUBSCRIBED
        )
    )
    session.commit()
    with FaultServer(keep=True) as server:
        settings = configure(server)
        _send_alerts(session, queue, settings, alerts_list)
        _send_transactional(session, lists, reader, make_editor)
    records = key_records(settings)
    captured = {_name(session, f): raw for f, _, raw in server.handler.messages}
    assert sorted(captured) == [
        "alert hashtag_day",
        "alert new_post",
        "alert newsletter",
        "alert petition",
        "mail confirm",
        "mail signature_confirm",
        "mail test",
        "mail your_data",
    ]
    problems = []
    for name, raw in sorted(captured.items()):
        scored = spamassassin(raw, tmp_path / "sa")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        html = message.get_body(("html",)).get_content().encode()
        checked = {c.algorithm: c.result for c in mail_dkim(raw, records, tmp_path)}
        facts = (
            f"{name}: score {scored.score} {scored.rules}, HTML {len(html)} bytes, "
            f"dkimpy {dkimpy_results(raw, records)}, Mail::DKIM {checked}"
        )
        print(facts)
        if (
            scored.score > MAX_SCORE
            or len(html) > MAX_HTML
            or dkimpy_results(raw, records) != [True, True]
            or checked.get("rsa-sha256") != "pass"
            or checked.get("ed25519-sha256") not in ("pass", "invalid")
        ):
            problems.append(facts)
    assert not problems, "\n".join(problems)
    # Alerts' bodies are quoted-printable where that is no longer than base64 (their HTML is
    # mostly markup): that encoding, too, was scored and verified above.
    encodings = {
        part["Content-Transfer-Encoding"]
        for name, raw in captured.items()
        if name.startswith("alert")
        for part in email.message_from_bytes(raw).walk()
        if not part.is_multipart()
    }
    assert "quoted-printable" in encodings, encodings
