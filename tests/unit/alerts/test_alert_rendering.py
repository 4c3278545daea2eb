"""Each kind renders with all its fields and with only the required ones; editor text is data."""

from __future__ import annotations

import pytest

from clarion.alerts.kinds import KINDS
from clarion.alerts.rendering import AlertContent, SiteContext, remote_assets, render_alert
from clarion.errors import ValidationError

BASE = "https://alerts.example.org"
SITE = SiteContext("Free Them All", BASE, "Urgent alerts")
RECIPIENT = {
    "greeting": "Hello Ales,",
    "unsubscribe_url": f"{BASE}/unsubscribe/TOKEN",
    "preferences_url": f"{BASE}/preferences/TOKEN",
}
ALL_FIELDS = {
    "new_post": {
        "post_url": "https://blog.example.org/2030/ales",
        "title": "Ales is free",
        "excerpt": "After 1,000 days the court released him.",
        "image_url": f"{BASE}/media/0123456789abcdef0123456789abcdef.png",
        "cta_text": "Read the whole story",
    },
    "petition": {
        "petition_url": "https://act.example.org/free-maria",
        "petition_title": "Free Maria Kalesnikava",
        "target": "The Supreme Court",
        "image_url": f"{BASE}/media/fedcba9876543210fedcba9876543210.png",
        "image_alt": "Maria in court, smiling behind the bars",
        "why": "She has been held **incommunicado** for [two years](https://news.example.org/m).",
        "ask": "Add your name",
    },
    "hashtag_day": {
        "hashtags": "#FreeThemAll #Belarus",
        "action_date": "2030-08-09",
        "action_time": "19:00",
        "action_timezone": "Europe/Minsk",
        "intro": "Five years since the election: **post at seven**.",
        "share_url": "https://blog.example.org/day",
        "suggested_post": "Five years on, 1,200 people are still behind bars.",
    },
    "newsletter": {"body_md": "## News\n\nThe *appeal* was heard.\n\n- one\n- two"},
}


def required_only(kind: str) -> dict[str, str]:
    return {f.name: ALL_FIELDS[kind][f.name] for f in KINDS[kind].fields if f.required}  # type: ignore[index]


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
def test_each_kind_renders_every_field(kind):
    mail = render_alert(
        AlertContent(kind, "The subject", ALL_FIELDS[kind], "Preheader"), RECIPIENT, SITE
    )
    assert mail.subject == "The subject"
    assert "Hello Ales," in mail.html and "Hello Ales," in mail.text
    assert f"{BASE}/unsubscribe/TOKEN" in mail.html and f"{BASE}/unsubscribe/TOKEN" in mail.text
    assert "Preheader" in mail.html
    assert remote_assets(mail.html, BASE) == []
    for name, value in ALL_FIELDS[kind].items():
        if name in {"action_date", "action_time", "hashtags", "body_md", "why", "intro"}:
            continue  # shown reformatted or as HTML; checked below
        if name == "image_url":
            assert value in mail.html
            continue
        assert value in mail.html or value.replace(",", "&#44;") in mail.html, name
        assert value in mail.text or name in {"image_url", "image_alt"}, name


def test_kind_specific_rendering():
    post = render_alert(
        AlertContent("hashtag_day", "S", ALL_FIELDS["hashtag_day"]), RECIPIENT, SITE
    )
    assert "Friday 9 August 2030, 19:00" in post.html and "(Europe/Minsk)" in post.html
    assert "https://x.com/intent/post?text=" in post.html
    assert "https://bsky.app/intent/compose?text=" in post.html
    assert f"{BASE}/share/mastodon?text=" in post.html
    assert "https://www.facebook.com/sharer/sharer.php?u=" in post.html
    assert "https://t.me/share/url?url=" in post.html
    assert "<strong>post at seven</strong>" in post.html
    petition = render_alert(AlertContent("petition", "S", ALL_FIELDS["petition"]), RECIPIENT, SITE)
    assert "<strong>incommunicado</strong>" in petition.html
    news = render_alert(AlertContent("newsletter", "S", ALL_FIELDS["newsletter"]), RECIPIENT, SITE)
    assert "<h2>News</h2>" in news.html and "<li>one</li>" in news.html
    assert "News\n----\n\nThe appeal was heard.\n\n- one\n- two" in news.text


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
def test_each_kind_renders_with_only_required_fields(kind):
    fields = required_only(kind)
    mail = render_alert(AlertContent(kind, "Only required", fields), RECIPIENT, SITE)
    assert "Hello Ales," in mail.html and mail.text.strip()
    defaults = [f.default for f in KINDS[kind].fields if f.default and not f.required]
    for default in defaults:
        if default != "UTC":
            assert default in mail.html, default
    assert "None" not in mail.text


def test_hashtag_day_without_link_has_no_facebook_button():
    mail = render_alert(
        AlertContent("hashtag_day", "S", required_only("hashtag_day")), RECIPIENT, SITE
    )
    assert "facebook.com" not in mail.html and "Facebook" not in mail.text
    assert "x.com/intent/post" in mail.html


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
def test_editor_text_is_data_not_template_code(kind):
    fields = dict(ALL_FIELDS[kind])
    for f in KINDS[kind].fields:
        if f.type in {"text", "markdown", "post", "textarea"}:
            fields[f.name] = "{{ 7*7 }} {% if true %}yes{% endif %} <b>bold</b> " + f.name
    mail = render_alert(AlertContent(kind, "{{ site_name }}", fields), RECIPIENT, SITE)
    assert mail.subject == "{{ site_name }}"
    assert "{{ 7*7 }} {% if true %}yes{% endif %}" in mail.html
    assert "{{ 7*7 }} {% if true %}yes{% endif %}" in mail.text
    for f in KINDS[kind].fields:
        if f.type in {"text", "post", "textarea"}:
            # Plain fields are escaped; Markdown fields keep only sanitised HTML.
            assert f"&lt;b&gt;bold&lt;/b&gt; {f.name}" in mail.html, f.name


def test_a_remote_image_is_refused():
    fields = dict(ALL_FIELDS["new_post"], image_url="https://tracker.example.net/pixel.png")
    with pytest.raises(ValidationError) as caught:
        render_alert(AlertContent("new_post", "S", fields), RECIPIENT, SITE)
    assert "tracker.example.net" in caught.value.errors["layout"]
