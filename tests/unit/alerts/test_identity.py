"""The campaign's identity as typed by an owner: contrast of the accent, addresses, lines."""

from __future__ import annotations

import pytest

from clarion.alerts import identity
from clarion.errors import ValidationError

CURRENT = identity.Identity(name="Old", sender_email="old@example.org", logo="abc.png")
GOOD = {
    "name": "  Free   Them All ",
    "accent": "#B3261E",
    "blog_url": "https://blog.example.org/",
    "privacy_url": "https://blog.example.org/privacy",
    "postal": "PO Box 1,\n Vilnius",
    "sender_name": "Free Them All",
    "sender_email": "News@Example.org",
}


@pytest.mark.parametrize(
    ("colour", "ratio"),
    [("#000000", 21.0), ("#ffffff", 1.0), ("#767676", 4.54), ("#777777", 4.48), ("#b3261e", 6.54)],
)
def test_contrast_on_white_is_the_wcag_ratio(colour, ratio):
    assert identity.contrast_on_white(colour) == pytest.approx(ratio, abs=0.01)


def test_a_good_form_is_cleaned_into_one_line_values_and_keeps_the_logo():
    parsed = identity.parse(GOOD, CURRENT)
    assert parsed.name == "Free Them All"
    assert parsed.postal == "PO Box 1, Vilnius"  # one line in every footer
    assert parsed.accent == "#b3261e"
    assert parsed.sender == "Free Them All <news@example.org>"
    assert parsed.logo == "abc.png"


def test_a_short_colour_is_the_long_one():
    assert identity.parse({**GOOD, "accent": "#036"}, CURRENT).accent == "#003366"


def test_an_accent_below_aa_is_refused_with_its_ratio_rounded_down():
    with pytest.raises(ValidationError) as refused:
        identity.parse({**GOOD, "accent": "#777777"}, CURRENT)
    # Rounded down (4.478 shows as 4.47): a refused colour never reads as 4.50.
    assert "4.47:1" in refused.value.errors["accent"]
    assert "4.5:1" in refused.value.errors["accent"]
    assert identity.parse({**GOOD, "accent": "#767676"}, CURRENT).accent == "#767676"


def test_every_bad_field_is_named_at_once():
    bad = {
        "name": " ",
        "accent": "red",
        "blog_url": "javascript:alert(1)",
        "privacy_url": "example.org/privacy",
        "postal": "x" * 301,
        "sender_name": "A\x07B",
        "sender_email": "not an address",
    }
    with pytest.raises(ValidationError) as refused:
        identity.parse(bad, CURRENT)
    assert set(refused.value.errors) == set(identity.TEXT_FIELDS)
    assert "#rrggbb" in refused.value.errors["accent"]
    assert "https://" in refused.value.errors["blog_url"]
