"""An editor presses Send in Chromium and watches the progress page count up to the end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from clarion.db import utcnow
from clarion.models import Alert, AlertStatus, Delivery, DeliveryStatus
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


def _log_in(page, live_server, make_editor) -> None:
    editor, password = make_editor("editor")
    page.goto(f"{live_server}/admin/login")
    page.fill("#email", editor.email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_the_progress_page_reaches_its_final_state_without_a_reload(
    page, live_server, session, make_editor
):
    """It showed "sent" but kept "(still counting)", Pause and Cancel, and "0 per second"."""
    alerts = make_list(session)
    readers = make_audience(session, alerts, 5)
    alert = make_alert(session, [alerts])
    started = utcnow() - timedelta(seconds=10)
    alert.status, alert.started_at, alert.recipients = AlertStatus.SENDING, started, 5
    session.commit()
    _log_in(page, live_server, make_editor)

    page.goto(f"{live_server}/admin/alerts/{alert.id}/progress")
    page.wait_for_function("document.querySelector('#send-progress') !== null")
    expect(page.get_by_text("(still counting)")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    # The send ends while the editor watches (as the last batch and finish_if_done leave it).
    session.add_all(
        Delivery(alert_id=alert.id, subscriber_id=i, status=DeliveryStatus.SENT, sent_at=utcnow())
        for i in readers
    )
    alert = session.get(Alert, alert.id)
    alert.status, alert.dispatched_at, alert.finished_at = AlertStatus.SENT, utcnow(), utcnow()
    session.commit()

    expect(page.locator("[data-field=status]")).to_have_text("sent", timeout=30000)
    expect(page.get_by_role("button", name="Send to those not yet reached")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel the send")).to_have_count(0)
    expect(page.get_by_text("(still counting)")).to_be_hidden()
    rate = float(page.inner_text("[data-field=rate]"))
    assert 0.2 <= rate <= 0.6  # 5 messages over the send's 10 s or so, not "0 per second"
    assert page.evaluate("window.notReloaded === true")  # the same page, brought up to date
