"""In Chromium: the audience section's conditions change the live count as they are typed,
name each fault by its path, and are saved with the draft."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clarion.db import utcnow
from clarion.models import (
    Alert,
    MailingList,
    Petition,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401

pytestmark = pytest.mark.e2e


def test_conditions_are_counted_as_typed_and_saved(live_server, page, session, editor_account):  # noqa: F811
    news = session.scalar(select(MailingList))
    other = Subscriber(email="other@example.org", name="Other")
    petition = Petition(slug="free-ales", title="Free Ales")
    session.add_all([other, petition])
    session.flush()
    session.add(
        Subscription(subscriber_id=other.id, list_id=news.id, status=SubscriptionStatus.SUBSCRIBED)
    )
    session.add(
        Signature(petition_id=petition.id, email=other.email, name="Other", confirmed_at=utcnow())
    )
    session.commit()
    problems = watch_for_errors(page)
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/alerts/new?kind=newsletter")
    page.fill("#subject", "Thank you")
    page.fill("#body_md", "Thank you for signing.")
    page.check('input[name="lists"]')
    expect(page.locator("#audience-count")).to_have_text("2")
    page.click("#conditions-box summary")
    page.fill("#conditions", json.dumps({"type": "signed", "petition": 999}))
    expect(page.locator("#audience-count")).to_have_text("?")
    expect(page.locator("#conditions-errors")).to_contain_text(
        "audience.conditions.petition: Nothing with id 999"
    )
    page.fill("#conditions", json.dumps({"type": "signed", "petition": petition.id}))
    expect(page.locator("#audience-count")).to_have_text("1")
    expect(page.locator("#conditions-errors")).to_have_text("")
    page.click("button[value=view]")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+$"))
    expect(page.locator("#audience-now")).to_have_text("1")
    session.expire_all()
    alert = session.scalar(select(Alert))
    assert alert.audience["conditions"] == {"type": "signed", "petition": petition.id}
    assert problems == []
