"""Every alert kind and every transactional mail in Chromium at a phone's 375 px and at 600 px:
with a 1200 px image, a long address, a long hashtag and a table, nothing scrolls sideways,
images stay within the column and the hashtag day's buttons are tap targets of 44 px or more.
Screenshots are left in the test's temporary folder for a person to look at."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clarion.alerts import media
from clarion.alerts.rendering import AlertContent, SiteContext, render_alert, render_template_file
from tests.helpers import tiny_png
from tests.unit.alerts.test_alert_rendering import ALL_FIELDS
from tests.unit.alerts.test_mail_content import TRANSACTIONAL

pytestmark = pytest.mark.e2e
WIDTHS = (375, 600)
TEXT_COLUMN = 502  # markup.COLUMN_WIDTH: 600 px less the section's and the text's padding
SECTION = 552  # 600 px less the section's padding: a new post's picture spans it
LONG_URL = "https://news.example.org/" + "/".join(["a-very-long-path-segment-without-breaks"] * 4)
LONG_TAG = "#FreeAllPoliticalPrisonersOfBelarusNowAndForever"
LONG_WORD = "Нераздзельнаеслова" * 4


@pytest.fixture
def media_site(settings):
    """Clarion's media served on loopback, a 1200 px image stored there like any copy."""
    name = media.store_image(tiny_png((1200, 500)), settings.instance_dir)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = partial(Quiet, directory=str(settings.instance_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, media.media_url(base, name)
    server.shutdown()


def markdown_with_everything(image: str) -> str:
    return (
        f"# {LONG_WORD}\n\n![A wide photo]({image})\n\nRead {LONG_URL} and "
        f"[this]({LONG_URL}). {LONG_TAG} {LONG_WORD}\n\n> A quote with {LONG_WORD}.\n\n"
        "| Prisoner | Days | Where | Note |\n|---|---|---|---|\n"
        f"| Ales | 1000 | {LONG_WORD} | {LONG_URL} |\n| Maria | 800 | Gomel | {LONG_TAG} |\n"
    )


def alert_mails(base: str, image: str) -> dict[str, str]:
    site = SiteContext("Free Them All", base, "Urgent alerts")
    recipient = {
        "greeting": f"Hello {LONG_WORD},",
        "unsubscribe_url": f"{base}/unsubscribe/{'T' * 60}",
        "preferences_url": f"{base}/preferences/{'T' * 60}",
    }
    body = markdown_with_everything(image)
    fields = {
        "new_post": dict(
            ALL_FIELDS["new_post"], image_url=image, title=LONG_WORD, excerpt=LONG_URL
        ),
        "petition": dict(
            ALL_FIELDS["petition"], petition_title=LONG_TAG, why=body, image_url=image
        ),
        "hashtag_day": dict(ALL_FIELDS["hashtag_day"], hashtags=f"{LONG_TAG} #Belarus", intro=body),
        "newsletter": {"body_md": body},
    }
    return {
        kind: render_alert(AlertContent(kind, LONG_WORD, values, LONG_WORD), recipient, site).html
        for kind, values in fields.items()
    }


def transactional_mails(base: str) -> dict[str, str]:
    mails = {}
    for name, context in TRANSACTIONAL.items():
        context = {k: v.replace("TOKEN", "T" * 120) if isinstance(v, str) else v
                   for k, v in context.items()}  # fmt: skip
        context.update({"name": LONG_WORD} if "name" in context else {})
        if "list_names" in context:
            context["list_names"] = [LONG_TAG, LONG_WORD]
        mails[name] = render_template_file(name, context, "be").html
    return mails


def measure(page) -> dict:
    return page.evaluate(
        """() => ({
          scroll: document.documentElement.scrollWidth,
          images: [...document.images].map(i => ({
            width: i.getBoundingClientRect().width, right: i.getBoundingClientRect().right,
            inText: !!i.closest('.content'), loaded: i.complete && i.naturalWidth > 0,
            attribute: Number(i.getAttribute('width'))})),
          buttons: [...document.querySelectorAll('a')]
            .filter(a => /Post on|Апублік/.test(a.textContent))
            .map(a => ({text: a.textContent.trim(), height: a.getBoundingClientRect().height,
                        width: a.getBoundingClientRect().width})),
        })"""
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_no_mail_scrolls_sideways_and_images_stay_in_the_column(page, media_site, tmp_path, width):
    base, image = media_site
    mails = {**alert_mails(base, image), **transactional_mails(base)}
    page.set_viewport_size({"width": width, "height": 900})
    for name, html in mails.items():
        page.set_content(html, wait_until="load")
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
        found = measure(page)
        assert found["scroll"] <= width, f"{name} at {width} px is {found['scroll']} px wide"
        for img in found["images"]:
            assert img["loaded"], f"{name}: an image did not load"
            column = TEXT_COLUMN if img["inText"] else SECTION
            assert img["width"] <= column and img["right"] <= width, (name, img)
            # Outlook ignores max-width and takes the attribute literally.
            assert 0 < img["attribute"] <= column, (name, img)
        if name in {"petition", "newsletter", "hashtag_day"}:
            assert [i for i in found["images"] if i["inText"]], f"{name}: no Markdown image"
        if name == "hashtag_day":
            assert len(found["buttons"]) == 5
            for button in found["buttons"]:
                assert button["height"] >= 44, button
