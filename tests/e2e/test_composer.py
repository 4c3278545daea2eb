"""In Chromium: the composer's preview follows the typing (desktop, mobile, text, each language
version), the toolbar writes Markdown and fields; no axe violation and no sideways scroll at
1280 and 375 px."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401

pytestmark = pytest.mark.e2e


def faults(page, axe: Axe) -> list[str]:
    """Sideways scroll and axe violations of the page as it is now."""
    found = []
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        found.append(f"scrolls sideways by {overflow} px")
    for violation in axe.run(page).response["violations"]:
        found.append(f"{violation['id']} {[n['target'] for n in violation['nodes']][:3]}")
    return found


def test_the_preview_follows_the_typing_in_every_view_and_version(
    live_server,
    page,
    editor_account,  # noqa: F811
):
    problems = watch_for_errors(page)
    axe = Axe()
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/alerts/new?kind=newsletter")
    frame = page.frame_locator("#composer-frame")
    page.fill("#subject", "Day 1000")
    page.locator("#body_md").press_sequentially("Write to Maria today")
    expect(frame.locator("body")).to_contain_text("Write to Maria today")
    expect(page.locator("#composer-subject")).to_have_text("Day 1000")

    # The toolbar: bold around the selection, then a field with its fallback.
    page.locator("#body_md").evaluate("el => el.setSelectionRange(0, 5)")
    page.click(".md-toolbar[data-md-for=body_md] [data-md=bold]")
    expect(page.locator("#body_md")).to_have_value("**Write** to Maria today")
    expect(frame.locator("strong")).to_have_text("Write")
    page.locator("#body_md").evaluate("el => el.setSelectionRange(0, 0)")
    page.select_option(".md-toolbar[data-md-for=body_md] [data-md=field]", index=1)
    expect(page.locator("#body_md")).to_have_value(
        '{{ first_name | default("friend") }}**Write** to Maria today'
    )
    expect(frame.locator("body")).to_contain_text("friendWrite to Maria today")
    # From the keyboard the toolbar is one Tab stop; arrows, Home and End move within it.
    focused = "() => document.activeElement.dataset.md || document.activeElement.id"
    in_bar = "() => !!document.activeElement.closest('.md-toolbar[data-md-for=body_md]')"
    page.locator("#body_md").focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "bold"  # the control last used
    page.keyboard.press("Home")
    page.keyboard.press("Shift+Tab")
    assert not page.evaluate(in_bar)  # out of the toolbar in one step, not through eight
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "heading"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "body_md"
    page.keyboard.press("Shift+Tab")
    for key, expected in (("ArrowRight", "bold"), ("End", "field"), ("ArrowRight", "heading"),
                          ("ArrowLeft", "field"), ("Home", "heading")):  # fmt: skip
        page.keyboard.press(key)
        assert page.evaluate(focused) == expected, key
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # back into the toolbar: where the editor left it
    assert page.evaluate(focused) == "bold"
    page.fill("#sample_name", "Ales Bialiatski")
    expect(frame.locator("body")).to_contain_text("AlesWrite to Maria today")
    page.fill("#body_md", "Dear {{ frist_name }}")
    expect(page.locator("#preview-errors")).to_contain_text("Unknown field {{ frist_name }}")
    page.fill("#body_md", "Write to Maria today")
    expect(page.locator("#preview-errors")).to_have_text("")

    wide = page.locator("#composer-frame").bounding_box()["width"]
    page.click("[data-preview-mode=mobile]")
    assert page.locator("#composer-frame").bounding_box()["width"] == 375 < wide
    page.click("[data-preview-mode=text]")
    expect(page.locator("#composer-frame")).to_be_hidden()
    expect(page.locator("#composer-text")).to_contain_text("Write to Maria today")
    page.click("[data-preview-mode=desktop]")

    page.click("#version-ru summary")
    page.fill("[id='ru.subject']", "День 1000")
    page.fill("[id='ru.body_md']", "Напишите Марии сегодня")
    expect(page.locator("#preview_lang option[value=ru]")).to_have_count(1)
    page.select_option("#preview_lang", "ru")
    expect(frame.locator("body")).to_contain_text("Напишите Марии сегодня")
    expect(page.locator("#composer-subject")).to_have_text("День 1000")
    assert frame.locator("html").get_attribute("lang") == "ru"
    assert faults(page, axe) == []

    page.set_viewport_size({"width": 375, "height": 667})
    expect(page.locator("#composer-preview")).to_be_hidden()
    assert faults(page, axe) == []
    page.click("[data-composer-tab=preview]")
    expect(page.locator("#composer-preview")).to_be_visible()
    expect(page.locator("#alert-form")).to_be_hidden()
    expect(frame.locator("body")).to_contain_text("Напишите Марии сегодня")
    assert faults(page, axe) == []
    assert problems == []
