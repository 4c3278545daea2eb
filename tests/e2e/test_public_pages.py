"""The public pages as a reader sees them in Chromium, on a desktop and on a phone: nothing drawn
over a checkbox, a front page, and a petition page whose sign button is near the top."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from clarion import tokens
from clarion.alerts import media, uploads
from clarion.models import MailingList
from tests.integration.alertkit import frozen_alert, make_petition, make_readers, token_of

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}  # an iPhone SE: "two screens" are 1,334 px
LONG = (
    "Urgent actions when a prisoner is moved, tried or sentenced: a petition to sign, a call to "
    "make or a post to share, usually within a day."
)

# For each checkbox: is what the browser finds at its centre the checkbox, or its own label?
CHECKBOX_HITS = """() => [...document.querySelectorAll('input[type=checkbox]')]
  .filter(box => box.offsetParent !== null)
  .map(box => {
    const r = box.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const hit = document.elementFromPoint(x, y);
    // The label itself, not text drawn inside it: the old <small> sat in the label, on the box.
    const own = hit === box
      || (hit && hit.tagName === 'LABEL' && (hit.contains(box) || hit.htmlFor === box.id));
    return {value: box.value, ok: !!own, hit: hit ? hit.outerHTML.slice(0, 120) : null};
  })"""


@pytest.fixture
def described_lists(session):
    """Public lists with descriptions long enough to wrap on a phone."""
    made = [
        MailingList(slug="urgent", name="Urgent actions", description=LONG),
        MailingList(slug="weekly", name="Weekly newsletter", description="One mail a week."),
        MailingList(slug="plain", name="Events"),
    ]
    session.add_all(made)
    session.commit()
    return made


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
def test_nothing_covers_a_list_s_checkbox(page, live_server, session, described_lists, viewport):
    """Pico's `input + small` rule drew each description over its checkbox."""
    reader = make_readers(session, 1)[0]
    make_petition(session, slug="free-ales")
    page.set_viewport_size(viewport)
    prefs = f"/preferences/{tokens.preferences_token(reader.uid)}"
    for path in ("/subscribe", "/", prefs, "/p/free-ales"):
        page.goto(f"{live_server}{path}")
        boxes = page.locator("input[type=checkbox]")
        assert boxes.count() == len(described_lists), path
        for i in range(boxes.count()):
            boxes.nth(i).scroll_into_view_if_needed()
            hits = page.evaluate(CHECKBOX_HITS)
            assert hits[i]["ok"], (path, hits[i])
        # The description sits under its list's name, not beside or above the box.
        box = page.locator(f"#list-{described_lists[0].id}").bounding_box()
        about = page.locator(f"#list-{described_lists[0].id}-about").bounding_box()
        assert about["y"] >= box["y"] + box["height"], path
        described = page.get_attribute(f"#list-{described_lists[0].id}", "aria-describedby")
        assert described == f"list-{described_lists[0].id}-about"


def test_the_front_page_signs_up_and_leads_to_petitions_and_the_archive(
    page, live_server, session, described_lists
):
    make_petition(session, slug="free-ales", title="Free Ales")
    make_petition(session, slug="closed-one", title="An old one", is_open=False)
    page.set_viewport_size(PHONE)
    response = page.goto(f"{live_server}/")
    assert response.status == 200
    petitions = page.locator("#open-petitions a")
    assert petitions.all_inner_texts() == ["Free Ales"]  # the closed one is not offered
    assert page.get_attribute("#archive-link a", "href").startswith("/archive")
    page.fill("#email", "front@example.org")
    page.check(f"#list-{described_lists[1].id}")
    page.click("form button[type=submit]")
    page.wait_for_selector("#accepted")
    page.goto(f"{live_server}/")
    page.click("#open-petitions a")
    assert page.url.startswith(f"{live_server}/p/free-ales")


def _image_url(settings) -> str:
    picture = io.BytesIO()
    Image.new("RGB", (1600, 1000), (120, 40, 40)).save(picture, "JPEG")
    picture.seek(0)
    return media.media_url(settings.base_url, uploads.store_upload(picture, settings.instance_dir))


@pytest.fixture
def reader_link(session, settings, described_lists):
    """A petition with a big image and a long text, and a fresh alert's link to it."""
    petition = make_petition(
        session,
        slug="free-ales",
        title="Free Ales Bialiatski and every political prisoner held in Belarus",
        target="The Minister of Internal Affairs of the Republic of Belarus",
        body_md="\n\n".join(["Ales has been held for more than a thousand days. " * 6] * 6),
        image_url=_image_url(settings),
        image_alt="Ales at his desk",
    )
    people = make_readers(session, 1)
    _alert, deliveries = frozen_alert(session, [f"{settings.base_url}/p/free-ales"], people)
    return petition, f"/r/{token_of(deliveries[0])}/0"


def test_a_prefilled_reader_on_a_phone_finds_the_button_within_two_screens(
    page, live_server, reader_link
):
    page.set_viewport_size(PHONE)
    _petition, link = reader_link
    page.goto(f"{live_server}{link}")
    page.wait_for_selector("#prefilled")
    page.wait_for_function("document.querySelector('.petition-image').complete")
    assert page.get_attribute(".petition-image", "alt") == "Ales at his desk"
    button = page.evaluate(
        "() => { const r = document.querySelector('#sign').getBoundingClientRect();"
        " return r.bottom + window.scrollY; }"
    )
    assert button <= 2 * PHONE["height"], button
    # The country list is there, folded, and still sent with the signature when chosen.
    assert not page.is_visible("#country")
    page.click("#more-fields summary")
    page.select_option("#country", "LT")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_reader_who_signed_and_comes_back_sees_when_and_how_to_share(
    page, live_server, session, reader_link
):
    petition, link = reader_link
    page.goto(f"{live_server}{link}")
    page.fill("#name", "Reader 0")
    page.click("#sign")
    page.wait_for_selector("#signed")
    # The mail's link again: no form, the day of the signature, and the share buttons.
    page.goto(f"{live_server}{link}")
    page.wait_for_selector("#signed-already")
    assert page.locator("#sign-form").count() == 0
    assert re.search(r"\d{4}", page.inner_text("#signed-on"))
    assert page.locator("#share-x").get_attribute("href").startswith("https://")
    assert page.locator("#copy-url").input_value().endswith(f"/p/{petition.slug}?source=share-copy")
