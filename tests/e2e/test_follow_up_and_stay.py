"""In Chromium at 375 px: the "Follow up" form of a sent alert writes the follow-up draft, and
the stay page of a "stay subscribed?" mail keeps its reader; no axe violation on any of them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from clarion import tokens
from clarion.db import utcnow
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Delivery,
    DeliveryStatus,
    FollowUp,
    MailingList,
    Stay,
    Subscriber,
)
from clarion.tracking import readers
from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401
from tests.helpers import refresh

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 667}


def sent_alert(session, **values) -> tuple[Alert, Delivery]:
    """A newsletter sent an hour ago to the editor account's reader."""
    news = session.scalar(select(MailingList))
    reader = session.scalar(select(Subscriber))
    started = utcnow() - timedelta(hours=1)
    alert = Alert(kind=AlertKind.NEWSLETTER, name="Day 1000", subject="1,000 days",
                  fields={"body_md": "Write to Ales."}, audience={"lists": [news.id]},
                  status=AlertStatus.SENT, started_at=started, frozen_at=started,
                  frozen_meta={"audience": {"lists": [news.id]}}, **values)  # fmt: skip
    session.add(alert)
    session.flush()
    delivery = Delivery(alert_id=alert.id, subscriber_id=reader.id, status=DeliveryStatus.SENT)
    session.add(delivery)
    session.commit()
    return alert, delivery


def no_violations(page) -> None:
    violations = Axe().run(page).response["violations"]
    assert [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations] == []


def test_the_follow_up_form_writes_a_draft_linked_to_its_origin(
    live_server,
    page,
    session,
    editor_account,  # noqa: F811
):
    origin, _delivery = sent_alert(session)
    problems = watch_for_errors(page)
    page.set_viewport_size(PHONE)
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/alerts/{origin.id}")
    expect(page.locator("#follow-up-form")).to_be_visible()
    no_violations(page)
    page.check('input[name="rule"][value="click"]')
    page.fill("#delay_hours", "later")
    page.click("#follow-up-submit")
    expect(page.locator("#delay_hours-error")).to_be_visible()
    expect(page.locator("#delay_hours")).to_have_value("later")
    no_violations(page)
    page.fill("#delay_hours", "48")
    page.click("#follow-up-submit")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+$"))
    expect(page.locator("#follow-up-of")).to_contain_text("Day 1000")
    expect(page.locator("#alert-conditions")).to_be_attached()
    no_violations(page)
    refresh(session)  # what the server wrote
    link = session.scalar(select(FollowUp))
    follow_up = session.get(Alert, link.alert_id)
    assert link.origin_id == origin.id and link.rule == "click"
    assert follow_up.status == AlertStatus.SCHEDULED
    assert follow_up.scheduled_at == origin.started_at + timedelta(hours=48)
    page.goto(f"{live_server}/admin/alerts/{origin.id}")
    expect(page.locator("#follow-up-list")).to_contain_text(follow_up.name)
    # The refused form answered 422, on purpose; nothing else failed.
    assert [p for p in problems if not p.startswith("422 ")] == []


def test_the_stay_page_asks_then_keeps_the_reader(live_server, page, session, editor_account):  # noqa: F811
    alert, delivery = sent_alert(session, stay_days=14)
    click_token = tokens.delivery_tokens(tokens.CLICK).encode(delivery.id)
    problems = watch_for_errors(page)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/stay?t={readers.stay_token(click_token)}")
    expect(page.locator("#stay")).to_be_visible()
    no_violations(page)
    assert session.scalar(select(Stay.id)) is None  # opening the page keeps no one
    page.click("#stay")
    expect(page.locator("#stayed")).to_be_visible()
    no_violations(page)
    refresh(session)  # what the server wrote
    assert session.scalar(select(Stay.alert_id)) == alert.id
    assert problems == []
