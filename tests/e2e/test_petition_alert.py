"""In Chromium: "Create an alert" on a petition's page opens a petition alert filled from it,
whose live audience count leaves out the petition's signers until they are included."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clarion.db import utcnow
from clarion.models import Alert, Petition, Signature, Subscriber
from tests.e2e.test_compose import editor_account, log_in, watch_for_errors  # noqa: F401

pytestmark = pytest.mark.e2e


def test_create_an_alert_from_a_petition(live_server, page, session, editor_account):  # noqa: F811
    reader = session.scalar(select(Subscriber))
    petition = Petition(
        slug="free-maria",
        title="Free Maria Kalesnikava",
        target="The Supreme Court",
        body_md="She must be freed.",
        goal=100,
        image_url=f"{live_server}/media/0123456789abcdef0123456789abcdef.png",
        image_alt="Maria in court",
    )
    session.add(petition)
    session.flush()
    session.add(
        Signature(
            petition_id=petition.id,
            email=reader.email,
            name="Reader",
            subscriber_id=reader.id,
            confirmed_at=utcnow(),
        )
    )
    session.commit()
    problems = watch_for_errors(page)
    log_in(page, live_server)
    page.goto(f"{live_server}/admin/petitions/{petition.id}")
    page.click("#create-alert")
    page.wait_for_url(re.compile(r".*/admin/alerts/new\?kind=petition&petition=\d+$"))
    expect(page.locator("#petition_id")).to_have_value(str(petition.id))
    expect(page.locator("#subject")).to_have_value("Free Maria Kalesnikava")
    expect(page.locator("#petition_title")).to_have_value("Free Maria Kalesnikava")
    expect(page.locator("#petition_url")).to_have_value(f"{live_server}/p/free-maria")
    expect(page.locator("#target")).to_have_value("The Supreme Court")
    expect(page.locator("#image_alt")).to_have_value("Maria in court")
    # The only reader signed: the live count leaves them out, until they are included.
    page.check('input[name="lists"]')
    expect(page.locator("#audience-count")).to_have_text("0")
    expect(page.locator("#skipped-count")).to_have_text("1")
    page.check("#include_signers")
    expect(page.locator("#audience-count")).to_have_text("1")
    expect(page.locator("#skipped-count")).to_have_text("0")
    page.uncheck("#include_signers")
    page.fill("#why", "Two years without a word from her.")
    page.click("button[value=view]")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+$"))
    expect(page.locator("#signers-skipped")).to_contain_text("1 reader who already signed")
    session.expire_all()
    alert = session.scalar(select(Alert))
    assert alert.fields["petition_id"] == str(petition.id)
    assert alert.audience["skip_signers_of"] == petition.id
    assert problems == []
