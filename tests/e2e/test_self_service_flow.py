"""A reader in Chromium, from the preferences page: mails themselves their data, downloads it
from the link in that mail, then erases themselves with a confirmation press."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clarion import tokens
from clarion.models import Subscriber
from tests.helpers import refresh

pytestmark = pytest.mark.e2e


def test_mail_me_my_data_then_erase_me(page, live_server, session, subscribed, worker, smtp_sink):
    reader_id = subscribed.id
    page.goto(f"{live_server}/preferences/{tokens.preferences_token(subscribed.uid)}")
    page.click("#send-my-data")
    page.wait_for_selector("#message")
    assert "sending a link" in page.inner_text("#message")

    [mail] = smtp_sink.wait_for(1)
    assert mail.envelope_to == ["reader@example.org"]
    link = re.search(r"http://\S+/your-data/\S+", mail.text).group(0)
    with page.expect_download() as download:
        page.evaluate(
            "url => { const a = document.createElement('a'); a.href = url; "
            "document.body.appendChild(a); a.click(); }",
            link,
        )
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["reader"]["email"] == "reader@example.org"

    page.click("#erase-me")
    page.wait_for_selector("#erase")
    refresh(session)
    assert session.get(Subscriber, reader_id) is not None  # only asked so far
    page.click("#erase")
    page.wait_for_selector("#erased")
    refresh(session)
    assert session.get(Subscriber, reader_id) is None
