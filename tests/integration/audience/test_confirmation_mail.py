"""The confirmation mail: sent by a real Celery worker over SMTP, rendered from MJML."""

from __future__ import annotations

import re

from sqlalchemy import select

from clarion.models import ConsentRecord
from tests.helpers import refresh, subscription_states

THIRD_PARTY = re.compile(r"""(?:src|href)=["'](?!http://127\.0\.0\.1)(?:https?:)?//""", re.I)


def test_worker_sends_the_confirmation_and_the_link_confirms(
    client, session, lists, worker, smtp_sink
):
    response = client.post(
        "/subscribe",
        data={"email": "Ana@Example.org", "name": "Ana", "lists": [str(lists["alerts"].id)]},
    )
    assert response.status_code == 200
    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["ana@example.org"]
    assert mail.subject == "Please confirm your subscription to Free Them All"
    msg = mail.message
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    assert "Urgent alerts" in mail.text and "Hello Ana" in mail.text
    assert THIRD_PARTY.search(mail.html) is None  # no web fonts, no remote images
    link = re.search(r"http://127\.0\.0\.1:\d+(/confirm/\S+)", mail.text).group(1)
    assert link in mail.html.replace("&amp;", "&")
    # Until confirmed, nothing but this mail goes to the address.
    assert subscription_states(session, "ana@example.org") == {"alerts": "pending"}
    page = client.get(link)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    assert client.post(link, data={"csrf_token": token}).status_code == 200
    assert subscription_states(session, "ana@example.org") == {"alerts": "subscribed"}


def test_no_mail_for_a_consent_confirmed_meanwhile(client, session, lists, worker, smtp_sink):
    from clarion.db import utcnow
    from tasks.mail import send_confirmation

    client.post("/subscribe", data={"email": "b@example.org", "lists": [str(lists["news"].id)]})
    smtp_sink.wait_for(1)
    refresh(session)
    consent = session.scalar(select(ConsentRecord))
    consent.confirmed_at = utcnow()
    session.commit()
    smtp_sink.clear()
    send_confirmation.delay(consent.id)
    client.post("/subscribe", data={"email": "c@example.org", "lists": [str(lists["news"].id)]})
    # The second sign-up's mail arrives; the first consent's resend never does.
    arrived = smtp_sink.wait_for(1)
    assert [m.envelope_to for m in arrived] == [["c@example.org"]]
