"""Pure rules of petitions and sharing: milestones, Mastodon hosts, share sources, reader links."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from clarion.actions.petitions import displayed_goal
from clarion.alerts import sharing
from clarion.errors import ValidationError
from clarion.tracking import clicks, opens

BASE = "https://act.example.org"


@pytest.mark.parametrize(
    ("goal", "count", "raise_goal", "shown"),
    [
        (1000, 10, True, 1000),  # not reached: the editor's goal
        (1000, 999, True, 1000),
        (1000, 1000, True, 2500),  # reached: the next milestone above the count
        (1000, 2600, True, 5000),
        (1000, 9999, True, 10000),
        (1000, 10000, True, 25000),
        (300, 300, True, 500),
        (1000, 5000, False, 1000),  # raising disabled: the bar just stays full
        (0, 50, True, 0),  # no goal at all
    ],
)
def test_the_goal_is_raised_at_milestones(goal, count, raise_goal, shown):
    assert displayed_goal(goal, count, raise_goal) == shown


@pytest.mark.parametrize(
    ("typed", "host"),
    [
        ("mastodon.social", "mastodon.social"),
        ("  Mastodon.Social ", "mastodon.social"),
        ("https://mastodon.social/", "mastodon.social"),
        ("@ana@mastodon.social", "mastodon.social"),
        ("ana@todon.eu", "todon.eu"),
        ("bürger.social", "xn--brger-kva.social"),
    ],
)
def test_mastodon_instances_are_read_as_host_names(typed, host):
    assert sharing.mastodon_instance(typed) == host


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "localhost",
        "127.0.0.1",
        "mastodon.social:8443",
        "mastodon.social/evil",
        "evil.example/share?x=",
        "user:pw@evil.example",
        "javascript:alert(1)",
        "evil.example\\@mastodon.social",
        "-bad.example",
        "a..example",
        "x" * 64 + ".example",
    ],
)
def test_anything_but_a_host_name_is_refused(typed):
    with pytest.raises(ValidationError):
        sharing.mastodon_instance(typed)


def test_the_mastodon_hand_off_goes_only_to_the_server_s_share_page():
    url = sharing.mastodon_share_url("mastodon.social", "Sign now #FreeThem https://x/y")
    assert (
        url == "https://mastodon.social/share?text=Sign%20now%20%23FreeThem%20https%3A%2F%2Fx%2Fy"
    )


def test_each_share_link_carries_its_own_source():
    links = sharing.petition_share_links(BASE, "free-them", "Free them")
    for network in sharing.NETWORKS:
        assert f"source%3Dshare-{network}" in links[network]
    assert links["copy"] == f"{BASE}/p/free-them?source=share-copy"
    assert links["mastodon"].startswith(f"{BASE}/share/mastodon?text=")


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        (f"{BASE}/p/free-them", "free-them"),
        (f"{BASE}/p/free-them/", "free-them"),
        (f"{BASE}/p/free-them?source=x#sign", "free-them"),
        (f"{BASE}/p/free-them/embed", None),
        (f"{BASE}/subscribe", None),
        ("https://other.example.org/p/free-them", None),
        (f"{BASE}.evil.example/p/free-them", None),
    ],
)
def test_only_our_own_petition_pages_get_a_reader_token(url, slug):
    assert clicks.petition_slug(url, BASE) == slug


def test_the_reader_token_is_added_without_touching_the_rest_of_the_link():
    url = clicks.with_reader_token(f"{BASE}/p/free-them?lang=be&r=stale#sign", "TOKEN")
    parts = urlsplit(url)
    assert parts.fragment == "sign" and parts.path == "/p/free-them"
    assert parse_qs(parts.query) == {"lang": ["be"], "source": ["email"], "r": ["TOKEN"]}


def test_the_pixel_goes_at_the_end_of_the_body():
    html = "<html><BODY><p>x</p></BODY ></html>"
    assert opens.add_pixel(html, "U") == (
        '<html><BODY><p>x</p><img src="U" width="1" height="1" alt="" border="0"></BODY ></html>'
    )
    assert opens.add_pixel("<p>x</p>", "U").startswith("<p>x</p><img")
