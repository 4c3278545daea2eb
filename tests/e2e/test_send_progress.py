"""An editor presses Send in Chromium and watches the progress page count up to the end."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.sendkit import make_alert, make_audience, make_list

pytestmark = pytest.mark.e2e


def test_the_progress_page_follows_the_send_live(page, live_server, session, worker, make_editor):
    alerts = make_list(session)
    make_audience(session, alerts, 40)
    alert = make_alert(session, [alerts])
    editor, password = make_editor("editor")
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "favicon" not in m.location.get("url", "")
            else None
        ),
    )
    page.goto(f"{live_server}/admin/login")
    page.fill("#email", editor.email)
    page.fill("#password", password)
    page.click("button[type=submit]")

    page.goto(f"{live_server}/admin/alerts/{alert.id}/progress")
    assert page.inner_text("[data-field=status]") == "draft"
    # A draft has no send button here (the composing pages have it): post the form they post.
    page.evaluate(
        """id => { const f = document.createElement('form'); f.method = 'post';
                   f.action = `/admin/alerts/${id}/send`;
                   const t = document.createElement('input'); t.type = 'hidden';
                   t.name = 'csrf_token'; t.value = document.querySelector(
                     'input[name=csrf_token]').value;
                   f.appendChild(t); document.body.appendChild(f); f.submit(); }""",
        alert.id,
    )
    page.wait_for_url(f"**/admin/alerts/{alert.id}/progress")
    # Our script, polling the JSON endpoint, brings the page to the end of the send.
    expect(page.locator("[data-field=status]")).to_have_text("sent", timeout=60000)
    assert page.inner_text("[data-field=sent]") == "40"
    assert page.inner_text("[data-field=remaining]") == "0"
    assert page.locator("text=Send to those not yet reached").count() == 1
    assert not errors  # nothing refused by the Content-Security-Policy, no script error
