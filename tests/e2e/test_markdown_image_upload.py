"""In Chromium: the image chosen beside a Markdown field is uploaded by our own script and its
Markdown inserted where the cursor was; the file is not sent again with the form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clarion.models import Alert
from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401
from tests.helpers import refresh, tiny_png

pytestmark = pytest.mark.e2e


@pytest.mark.usefixtures("editor_account")
def test_the_upload_inserts_markdown_at_the_cursor(live_server, page, session, tmp_path):
    problems = watch_for_errors(page)
    photo = tmp_path / "Ales at the gate.png"
    photo.write_bytes(tiny_png((900, 300)))
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/alerts/new?kind=newsletter")
    page.fill("#subject", "With a picture")
    page.fill("#body_md", "Before.\nAfter.")
    page.evaluate("() => { const t = document.getElementById('body_md'); "
                  "t.focus(); t.setSelectionRange(7, 7); }")  # fmt: skip
    page.set_input_files("#md_image", str(photo))
    expect(page.locator("#md-image-status")).to_have_text("Image inserted.")
    value = page.input_value("#body_md")
    assert re.fullmatch(
        r"Before\.\n\n!\[Ales at the gate\]\(http://127\.0\.0\.1:\d+/media/[0-9a-f]{32}\.jpg\)\n"
        r"\nAfter\.",
        value,
    ), value
    assert page.input_value("#md_image") == ""
    page.check('input[name="lists"]')
    page.click("button[value=view]")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+$"))
    refresh(session)
    saved = session.scalar(select(Alert)).fields["body_md"]
    assert saved.replace("\r\n", "\n") == value  # browsers send a textarea's lines as CRLF
    assert problems == []
