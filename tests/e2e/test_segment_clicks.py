"""In Chromium: building "Only readers who…" by clicking — the editor writes the JSON tree, the
live count (total and per language) follows, the draft is saved with it, the editor reads it
back, and axe finds nothing wrong at a phone's and a desktop's width."""

from __future__ import annotations

import json
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from clarion.db import utcnow
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Delivery,
    DeliveryStatus,
    MailingList,
    Petition,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401

pytestmark = pytest.mark.e2e


def _world(session) -> tuple[int, int]:
    """Besides the editor's reader (en): other (en) signed the petition; ana (ru) got alert A."""
    news = session.scalar(select(MailingList))
    other = Subscriber(email="other@example.org", name="Other", language="en")
    ana = Subscriber(email="ana@example.org", name="Ana", language="ru")
    petition = Petition(slug="free-ales", title="Free Ales")
    sent = Alert(kind=AlertKind.NEWSLETTER, name="Day 1000", subject="Day 1000", fields={},
                 audience={}, status=AlertStatus.SENT, frozen_at=utcnow())  # fmt: skip
    session.add_all([other, ana, petition, sent])
    session.flush()
    for reader in (other, ana):
        session.add(
            Subscription(
                subscriber_id=reader.id, list_id=news.id, status=SubscriptionStatus.SUBSCRIBED
            )
        )
    session.add(
        Signature(petition_id=petition.id, email=other.email, name="Other", confirmed_at=utcnow())
    )
    session.add(Delivery(alert_id=sent.id, subscriber_id=ana.id, status=DeliveryStatus.SENT))
    session.commit()
    return petition.id, sent.id


def test_a_condition_built_by_clicking_is_counted_written_and_saved(
    live_server,
    page,
    session,
    editor_account,  # noqa: F811
):
    petition_id, alert_id = _world(session)
    problems = watch_for_errors(page)
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/alerts/new?kind=newsletter")
    page.fill("#subject", "Thank you")
    page.fill("#body_md", "Thank you.")
    page.check('input[name="lists"]')
    expect(page.locator("#audience-count")).to_have_text("3")
    page.click("#conditions-box summary")
    editor = page.locator("#segment-editor")
    expect(editor).to_be_visible()
    types = editor.locator("select[data-role=type]")

    # Did not sign the petition: the new condition's type has the focus, to go on by keyboard.
    editor.get_by_role("button", name="Add a condition", exact=True).click()
    expect(types.nth(0)).to_be_focused()
    expect(types.nth(0)).to_have_value("signed")
    editor.get_by_label("Petition").select_option(str(petition_id))
    editor.get_by_label("not (the opposite)").check()
    expect(page.locator("#audience-count")).to_have_text("2")

    # …and (received alert A, or reads in English).
    editor.get_by_role("button", name="Add a group").click()
    expect(types.nth(1)).to_be_focused()
    types.nth(1).select_option("received")
    expect(types.nth(1)).to_be_focused()  # drawn anew, the row keeps the keyboard
    editor.get_by_label("Alert").select_option(str(alert_id))
    editor.get_by_role("button", name="Add a condition to the group").click()
    types.nth(2).select_option("language")
    editor.get_by_label("English").check()

    expected = {
        "all": [
            {"not": {"type": "signed", "petition": petition_id}},
            {"any": [
                {"type": "received", "alert": alert_id},
                {"type": "language", "languages": ["en"]},
            ]},
        ]
    }  # fmt: skip
    expect(page.locator("#audience-count")).to_have_text("2")
    expect(page.locator("#audience-languages")).to_contain_text("English: 1")
    expect(page.locator("#audience-languages")).to_contain_text("Русский: 1")
    assert json.loads(page.input_value("#conditions")) == expected

    # Any of them instead of all: everyone but no one is left out.
    editor.get_by_label("Readers must meet").first.select_option("any")
    expect(page.locator("#audience-count")).to_have_text("3")
    editor.get_by_label("Readers must meet").first.select_option("all")
    expect(page.locator("#audience-count")).to_have_text("2")

    axe = Axe()
    for width, height in ((375, 667), (1280, 800)):
        page.set_viewport_size({"width": width, "height": height})
        violations = axe.run(page).response["violations"]
        assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []

    page.click("button[value=view]")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+$"))
    expect(page.locator("#audience-now")).to_have_text("2")
    session.expire_all()
    alert = session.scalar(select(Alert).where(Alert.subject == "Thank you"))
    assert alert.audience["conditions"] == expected

    # The editor reads the saved tree back; removing a condition rewrites the JSON.
    page.goto(f"{live_server}/admin/alerts/{alert.id}/edit")  # the box opens with conditions
    expect(types).to_have_count(3)
    editor.get_by_role("button", name="Remove: Condition 1").click()
    assert json.loads(page.input_value("#conditions")) == {"all": [expected["all"][1]]}
    expect(page.locator("#audience-count")).to_have_text("3")
    assert problems == []
