"""The campaign's identity in Chromium: header with logo and name linking to the blog, footer
with the postal line and privacy link, the accent on buttons, and nothing wider than a phone."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from clarion.alerts import identity

pytestmark = pytest.mark.e2e

PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 800}
LONG_NAME = "Committee for the Release of Political Prisoners in Belarus and Beyond"
FORM = {
    "name": LONG_NAME,
    "accent": "#0b5394",
    "blog_url": "https://blog.example.org/",
    "privacy_url": "https://blog.example.org/privacy",
    "postal": "Committee for the Release, PO Box 17, 01001 Vilnius, Lithuania, info@example.org",
    "sender_name": "The Committee",
    "sender_email": "news@example.org",
}


@pytest.fixture
def campaign(session, make_editor):
    """FORM with a wide logo, saved by an owner."""
    owner, _ = make_editor("owner", "boss@example.org")
    logo = io.BytesIO()
    Image.new("RGB", (1200, 200), (11, 83, 148)).save(logo, "PNG")
    logo.seek(0)
    saved = identity.save(session, owner, FORM, logo)
    session.commit()
    return saved


@pytest.mark.parametrize("path", ["/", "/subscribe", "/archive", "/p/none"])
def test_public_pages_show_the_campaign_and_fit_a_phone(page, live_server, campaign, path):
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        page.goto(f"{live_server}{path}")
        brand = page.locator("header a.site-brand")
        assert brand.get_attribute("href") == FORM["blog_url"]
        assert brand.inner_text().strip() == LONG_NAME
        loaded = page.eval_on_selector("header a.site-brand img", "img => img.naturalWidth")
        assert loaded > 0  # the logo is served from our media, not broken
        box = page.locator("header a.site-brand img").bounding_box()
        assert box["x"] + box["width"] <= viewport["width"]
        privacy = page.locator("footer a", has_text="Privacy policy")
        assert privacy.get_attribute("href") == FORM["privacy_url"]
        assert FORM["postal"] in page.locator("footer").inner_text()
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} at {viewport['width']} px scrolls sideways by {overflow}"


def test_buttons_take_the_accent_colour(page, live_server, campaign):
    page.goto(f"{live_server}/subscribe")
    colour = page.eval_on_selector(
        "main button[type=submit]", "b => getComputedStyle(b).backgroundColor"
    )
    assert colour == "rgb(11, 83, 148)"
