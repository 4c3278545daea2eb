"""From the alert in the catcher to a signature: click, recognised (masked), one press, stats."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from clarion.db import session_scope, utcnow
from clarion.delivery import dispatch, sending
from clarion.models import Alert, AlertKind, Delivery, Signature, Subscriber
from clarion.tracking import eventstream
from tests.helpers import refresh
from tests.integration.alertkit import make_petition
from tests.sendkit import make_audience, make_list

pytestmark = pytest.mark.e2e


def test_a_reader_signs_from_the_alert_in_one_press_and_the_stats_move(
    browser, live_server, session, worker, smtp_sink, make_editor
):
    editor, password = make_editor("viewer")
    make_petition(session, slug="free-ales", title="Free Ales", goal=10)
    urgent = make_list(session, "urgent", name="Urgent actions")
    news = make_list(session, "news", name="Newsletter")
    make_audience(session, urgent, 1)
    reader = session.scalar(select(Subscriber))
    reader.name, reader.email = "Alesia Reader", "alesia@example.org"
    petition_url = f"{live_server}/p/free-ales"
    alert = Alert(
        kind=AlertKind.PETITION,
        name="Sign for Ales",
        subject="Ales needs your signature",
        fields={
            "petition_url": petition_url,
            "petition_title": "Free Ales",
            "why": "He has been held for [1,000 days](https://blog.example.org/ales).",
        },
        audience={"lists": [urgent.id]},
    )
    session.add(alert)
    session.commit()
    sending.start(session, alert)
    session.commit()
    dispatch.enqueue_dispatch(alert.id)

    # The alert arrives in the catcher with every link tracked.
    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["alesia@example.org"]
    refresh(session)
    n = session.get(Alert, alert.id).frozen_links.index(petition_url)
    tracked = re.search(rf"{re.escape(live_server)}/r/[a-z0-9]{{26}}/{n}\b", mail.text).group(0)
    assert "free-ales" not in tracked and "alesia" not in tracked
    # The reader opens it a while later (a click in the first seconds counts as a link scanner).
    # Written through a writer session: workers are writing too, and SQLite refuses a write
    # from a reader's stale snapshot at once instead of waiting.
    with session_scope() as writer:
        writer.execute(
            update(Delivery)
            .values(sent_at=utcnow() - timedelta(minutes=30))
            .where(Delivery.alert_id == alert.id)
        )

    # The reader follows the petition link: recognised, but shown only a masked address (a
    # link may have been forwarded), and the name is theirs to type.
    context = browser.new_context()
    page = context.new_page()
    page.goto(tracked)
    page.wait_for_selector("#prefilled")
    assert page.url == f"{petition_url}?source=email"  # no token left in the address bar
    assert page.inner_text("#reader-address") == "a\u2022\u2022\u2022@example.org"
    assert "alesia@example.org" not in page.content() and page.input_value("#name") == ""
    assert page.inner_text("#count") == "0"
    # Only the list they are not on is offered, and joining it is never assumed.
    assert page.locator("input[name=lists]").count() == 1
    assert not page.is_checked(f"input[name=lists][value='{news.id}']")

    # The mail is fresh: one press signs.
    page.fill("#name", "Alesia Reader")
    page.click("#sign")
    page.wait_for_selector("#signed")
    assert page.inner_text("#count") == "1"
    context.close()
    refresh(session)
    signature = session.scalar(select(Signature))
    assert (signature.alert_id, signature.source) == (alert.id, "email")
    assert signature.confirmed_at is not None

    # The editor sees the alert's stats move once beat's flush has run.
    eventstream.flush()
    admin = browser.new_context().new_page()
    problems: list[str] = []
    admin.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    admin.goto(f"{live_server}/admin/login")
    admin.fill("#email", editor.email)
    admin.fill("#password", password)
    admin.click("button[type=submit]")
    admin.goto(f"{live_server}/admin/alerts/{alert.id}/stats")
    assert admin.inner_text("#stat-clicks") == "1"
    assert admin.inner_text("#stat-unique-clicks") == "1"
    assert admin.inner_text("#stat-scanner-clicks") == "0"
    assert admin.inner_text("#stat-signatures") == "1"
    assert admin.inner_text("#stat-sent") == "1"
    admin.wait_for_selector("canvas[data-drawn='1']")  # Chart.js ran under our strict CSP
    assert problems == []
    admin.context.close()
