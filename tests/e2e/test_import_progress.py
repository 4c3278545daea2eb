"""In Chromium: upload a CSV, map its columns, watch our script's progress bar reach the end."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from clarion.models import MailingList, Role

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


@pytest.fixture
def import_worker(backend, tmp_path_factory):
    from tests.conftest import start_worker

    w = start_worker(backend, tmp_path_factory.mktemp("e2e-worker") / "worker.log")
    yield w
    w.stop()


def test_upload_map_and_watch_the_progress_bar(
    live_server, page, session, import_worker, tmp_path, monkeypatch
):
    from argon2 import PasswordHasher

    from clarion import editors

    monkeypatch.setattr(
        editors, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )
    editors.create_editor(session, "editor@example.org", Role.EDITOR, PASSWORD)
    session.add(MailingList(slug="news", name="Newsletter"))
    session.commit()
    rows = "".join(f"p{i}@example.org;Person {i};yes\n" for i in range(20000))
    path = tmp_path / "people.csv"
    path.write_bytes(("email;name;consent\n" + rows + "broken;Nobody;yes\n").encode("utf-8-sig"))

    page.goto(f"{live_server}/admin/login")
    page.fill("#email", "editor@example.org")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/admin/jobs")
    page.set_input_files("input[type=file]", str(path))
    page.click("text=Upload and map columns")
    expect(page.locator("#preview")).to_contain_text("Person 0")
    assert page.locator('select[name="col-0"]').input_value() == "email"
    assert page.locator('select[name="col-2"]').input_value() == "consent"
    page.check('input[name="lists"]')
    page.click("#import-map button[type=submit]")
    # 20,000 rows take the worker a few seconds: the page starts before the end, and only our
    # script moves the bar and the counts from here on.
    assert page.locator("#job").get_attribute("data-status") in {"queued", "running"}
    expect(page.locator("#job [data-field=status]")).to_have_text("done", timeout=60_000)
    assert page.locator("#job-bar").get_attribute("value") == "100"
    expect(page.locator("[data-field=created]")).to_have_text("20000")
    expect(page.locator("[data-field=rejected]")).to_have_text("1")
    expect(page.locator("#rejected-link")).to_be_visible()
