"""The admin Outbox shows what the catcher received: rendered, as text, with headers."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest


def _send(port: int, subject: str = "Hello <readers>") -> None:
    msg = EmailMessage()
    msg["From"] = "alerts@clarion.test"
    msg["To"] = "reader@example.org"
    msg["Subject"] = subject
    msg["List-Id"] = "<alerts.clarion.test>"
    msg.set_content("Plain words")
    msg.add_alternative(
        "<p onclick='x()'>Rich <b>words</b></p><script>alert(1)</script>", subtype="html"
    )
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.send_message(msg)


def test_outbox_needs_a_login(client):
    response = client.get("/admin/outbox")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_every_role_can_read_the_outbox(client, login, smtp_sink, role):
    _send(smtp_sink.port)
    login(client, role)
    html = client.get("/admin/outbox").get_data(as_text=True)
    assert "Hello &lt;readers&gt;" in html and "reader@example.org" in html


def test_message_page_shows_text_headers_and_sandboxed_html(client, login, smtp_sink):
    _send(smtp_sink.port)
    login(client)
    [caught] = smtp_sink.messages()
    page = client.get(f"/admin/outbox/{caught.key}").get_data(as_text=True)
    assert "Plain words" in page
    assert "List-Id" in page and "&lt;alerts.clarion.test&gt;" in page
    assert "X-Catcher" not in page
    assert "<iframe" in page and "sandbox" in page
    frame = client.get(f"/admin/outbox/{caught.key}/html")
    assert b"Rich <b>words</b>" in frame.data
    # The frame may style itself but never run a script or load anything from elsewhere.
    csp = frame.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_unknown_message_is_404(client, login):
    login(client)
    assert client.get("/admin/outbox/no-such-key").status_code == 404
