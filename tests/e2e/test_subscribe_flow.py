"""A reader subscribes in Chromium, confirms from the catcher's mail, and leaves in one click."""

from __future__ import annotations

import re

import pytest

from clarion import tokens
from clarion.models import Subscriber
from tests.helpers import subscription_states

pytestmark = pytest.mark.e2e


def test_subscribe_confirm_and_one_click_unsubscribe(
    page, live_server, session, lists, worker, smtp_sink, make_editor
):
    # The reader fills in the public form.
    page.goto(f"{live_server}/subscribe?source=e2e")
    page.fill("#email", "Reader@Example.org")
    page.fill("#name", "Alesia")
    page.check(f"input[name=lists][value='{lists['alerts'].id}']")
    page.click("button[type=submit]")
    page.wait_for_selector("#accepted")
    assert subscription_states(session, "reader@example.org") == {"alerts": "pending"}

    # An editor opens the confirmation mail in the Outbox of the local catcher.
    smtp_sink.wait_for(1)
    editor, password = make_editor("viewer")
    page.goto(f"{live_server}/admin/login")
    page.fill("#email", editor.email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/admin/outbox")
    page.click("text=Please confirm your subscription")
    text = page.inner_text("#mail-text")
    confirm_url = re.search(r"http://\S+/confirm/\S+", text).group(0)

    # The reader follows the link and presses the button.
    page.goto(confirm_url)
    page.click("#confirm")
    page.wait_for_selector("#confirmed")
    assert subscription_states(session, "reader@example.org") == {"alerts": "subscribed"}

    # The unsubscribe page only asks; the one-click POST (no cookie) unsubscribes.
    reader = session.query(Subscriber).filter_by(email="reader@example.org").one()
    token = tokens.unsubscribe_token(reader.uid, [lists["alerts"].id])
    page.goto(f"{live_server}/unsubscribe/{token}")
    page.wait_for_selector("#unsubscribe")
    assert subscription_states(session, "reader@example.org") == {"alerts": "subscribed"}
    request = page.context.browser.new_context().request
    response = request.post(
        f"{live_server}/unsubscribe/{token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data="List-Unsubscribe=One-Click",
        max_redirects=0,
    )
    assert response.status == 200
    assert subscription_states(session, "reader@example.org") == {"alerts": "unsubscribed"}
    # And the button on the page does the same, idempotently.
    page.click("#unsubscribe")
    page.wait_for_selector("#unsubscribed")
