"""In Chromium: an editor creates a series, adds a step and writes its mail, sets its delay and
condition (a bad one refused as typed), makes it ready, starts, pauses and resumes it; the
pages pass axe-core and never scroll sideways on a phone or a desktop."""

from __future__ import annotations

import json
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from clarion.models import Alert, AlertStatus, Petition, Series, SeriesStatus, SeriesStep
from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401
from tests.e2e.test_every_page import DESKTOP, PHONE, _check
from tests.helpers import refresh

pytestmark = pytest.mark.e2e


def test_an_editor_builds_starts_pauses_and_resumes_a_series(
    live_server,
    page,
    session,
    editor_account,  # noqa: F811
):
    petition = Petition(slug="free-ales", title="Free Ales")
    session.add(petition)
    session.commit()
    problems = watch_for_errors(page)
    axe = Axe()
    log_in(page, live_server)

    page.goto(f"{live_server}/admin/alerts")
    page.click("#series-link")  # linked from the Alerts page
    page.wait_for_url(f"{live_server}/admin/series")
    page.click("button:text('Create series')")  # no name: refused, the choices kept
    expect(page.locator("#name-error")).to_contain_text("Give the series a name")
    page.fill("#series-name", "Welcome journey")
    page.check('input[name="trigger"][value="joined"]')
    page.click("button:text('Create series')")
    page.wait_for_url(re.compile(r".*/admin/series/\d+$"))
    series_url = page.url
    expect(page.locator("#series-state")).to_contain_text("Paused")

    page.select_option("#step-kind", "newsletter")
    page.fill("#step-delay", "0")
    page.click("button:text('Add the step')")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+/edit$"))
    page.fill("#subject", "Welcome, and a first step")
    page.fill("#body_md", "Thank you for joining. Sign here: https://blog.example.org/sign")
    page.click("button[value=view]")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+$"))

    page.goto(series_url)
    step_row = page.locator("#steps tbody tr").first
    expect(step_row).to_contain_text("Welcome, and a first step")
    step_row.locator("summary:text('Delay and condition')").click()
    delay = step_row.locator('input[name="delay_hours"]')
    conditions = step_row.locator('textarea[name="conditions"]')
    delay.fill("48")
    conditions.fill('{"type": "signed"')
    step_row.locator("button:text('Save the step')").click()
    step_row = page.locator("#steps tbody tr").first
    expect(step_row.locator("details")).to_have_attribute("open", "")
    expect(step_row.locator('textarea[name="conditions"]')).to_have_value('{"type": "signed"')
    expect(step_row.locator('input[name="delay_hours"]')).to_have_value("48")
    expect(step_row.locator(".field-error")).not_to_have_count(0)
    step_row.locator('textarea[name="conditions"]').fill(
        json.dumps({"not": {"type": "signed", "petition": petition.id}})
    )
    step_row.locator("button:text('Save the step')").click()
    expect(page.locator("#steps tbody tr").first).to_contain_text("48.0 h")
    expect(page.locator("#steps tbody tr").first).to_contain_text("meet its condition")

    page.click("button:text('Make ready')")
    expect(page.locator("#steps tbody tr").first).to_contain_text("ready")
    for viewport in (PHONE, DESKTOP):
        problems += _check(page, axe, series_url, viewport)
        problems += _check(page, axe, f"{live_server}/admin/series", viewport)

    page.goto(series_url)
    page.click("button:text('Start the series')")
    expect(page.locator("#series-state")).to_contain_text("Active")
    page.click("button:text('Pause the series')")
    expect(page.locator("#series-state")).to_contain_text("Paused")
    refresh(session)
    assert session.scalars(select(Series)).one().status == SeriesStatus.PAUSED
    page.click("button:text('Start the series')")
    expect(page.locator("#series-state")).to_contain_text("Active")
    for viewport in (PHONE, DESKTOP):
        problems += _check(page, axe, series_url, viewport)

    refresh(session)
    series = session.scalars(select(Series)).one()
    step = session.scalars(select(SeriesStep)).one()
    assert (series.name, series.status) == ("Welcome journey", SeriesStatus.ACTIVE)
    assert step.delay_seconds == 48 * 3600
    assert step.conditions == {"not": {"type": "signed", "petition": petition.id}}
    assert session.get(Alert, step.alert_id).status == AlertStatus.SENDING
    refused = [p for p in problems if p.startswith("422 ")]  # the two forms refused on purpose
    assert [p.rsplit("/admin/", 1)[1] for p in refused] == [
        "series",
        f"series/{series.id}/steps/{step.id}",
    ]
    others = [p for p in problems if p not in refused]
    assert others == [], "\n".join(others)
