"""What readers' mail clients get from editors' content: images that fit the column, headings
kept, text parts without Markdown, the plain hidden preheader, the language, and a "Post this"
that carries the public link, never the reader's own tracked one."""

from __future__ import annotations

import re

import pytest

from clarion.alerts import markup, media
from clarion.alerts.freeze import freeze_content
from clarion.alerts.rendering import (
    UNTRACKED_CLOSE,
    UNTRACKED_OPEN,
    AlertContent,
    SiteContext,
    render_alert,
    render_template_file,
)
from tests.helpers import tiny_png
from tests.unit.alerts.test_alert_rendering import ALL_FIELDS, BASE, RECIPIENT, SITE

OWN_IMAGE = f"{BASE}/media/0123456789abcdef0123456789abcdef.png"
IMG_RE = re.compile(r"<img\b[^>]*>")
TRANSACTIONAL = {
    "confirm": {
        "site_name": "Free Them All",
        "name": "Ales",
        "list_names": ["Urgent alerts"],
        "confirm_url": f"{BASE}/confirm/TOKEN",
        "ttl_hours": 48,
    },
    "signature_confirm": {
        "site_name": "Free Them All",
        "name": "Ales",
        "petition_title": "Free Maria",
        "confirm_url": f"{BASE}/p/maria/confirm/TOKEN",
        "ttl_hours": 48,
    },
    "your_data": {
        "site_name": "Free Them All",
        "download_url": f"{BASE}/your-data/TOKEN",
        "ttl_hours": 24,
    },
}


def images(html: str) -> list[str]:
    return IMG_RE.findall(html)


def test_a_wide_image_gets_the_column_width_for_outlook_and_max_width_for_the_rest():
    html = markup.markdown_to_html(f"![Ales]({OWN_IMAGE})", BASE, lambda url: 1200)
    (img,) = images(html)
    assert 'width="502"' in img and "max-width:100%" in img and "height:auto" in img
    assert f'src="{OWN_IMAGE}"' in img and 'alt="Ales"' in img


def test_a_narrow_image_keeps_its_own_width_and_an_unknown_one_gets_the_column():
    (small,) = images(markup.markdown_to_html(f"![x]({OWN_IMAGE})", BASE, lambda url: 120))
    (unknown,) = images(markup.markdown_to_html(f"![x]({OWN_IMAGE})", BASE))
    assert 'width="120"' in small and 'width="502"' in unknown
    html = f'<img src="{OWN_IMAGE}" width="3000" height="900" alt="big">'
    (asked,) = images(markup.markdown_to_html(html, BASE, lambda url: 1200))
    assert 'width="502"' in asked and "height=" not in asked.replace("height:auto", "")


def test_an_image_from_elsewhere_becomes_its_alt_text_never_an_img_without_src():
    html = markup.markdown_to_html("Look: ![Ales at the gate](https://cdn.example.net/a.png)", BASE)
    assert images(html) == []
    assert "Ales at the gate" in html and "cdn.example.net" not in html


def test_a_first_level_heading_is_kept():
    assert "<h1>Big news</h1>" in markup.markdown_to_html("# Big news\n\nText.", BASE)


def test_stored_width_is_read_from_the_stored_copy(tmp_path):
    name = media.store_image(tiny_png((1200, 30)), tmp_path)
    assert media.stored_width(media.media_url(BASE, name), BASE, tmp_path) == 1200
    assert media.stored_width("https://cdn.example.net/a.png", BASE, tmp_path) is None
    missing = f"{BASE}/media/{'f' * 32}.png"
    assert media.stored_width(missing, BASE, tmp_path) is None


def test_the_text_part_has_no_markdown_and_reads_as_text():
    source = (
        "# Big news\n\n## The appeal\n\nThe *appeal* was **heard** on "
        "[Monday](https://news.example.org/m), see https://example.org/raw.\n\n"
        f"![Ales at the gate]({OWN_IMAGE})\n\n> Quoted words.\n\n- one\n- two\n\n"
        "| Name | Days |\n|---|---:|\n| Ales | 1000 |\n| Maria | 800 |\n"
    )
    text = markup.markdown_to_text(source)
    assert text.startswith("Big news\n========\n\nThe appeal\n----------\n\n")
    assert "The appeal was heard on Monday (https://news.example.org/m)" in text
    assert "see https://example.org/raw." in text
    assert "Ales at the gate" in text and OWN_IMAGE not in text
    assert "> Quoted words." in text and "- one\n- two" in text
    assert "Name: Ales · Days: 1000\nName: Maria · Days: 800" in text
    for markdown in ("**", "##", "](", "|", "!["):
        assert markdown not in text, markdown


def test_a_link_whose_text_is_its_address_is_written_once():
    text = markup.markdown_to_text("<https://example.org/x> and [me](mailto:me@example.org)")
    assert text == "https://example.org/x and me (me@example.org)"


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
def test_each_kinds_text_part_is_plain(kind):
    fields = dict(ALL_FIELDS[kind])
    for name in ("why", "intro", "body_md"):
        if name in fields:
            fields[name] = "## Heading\n\n**bold** and [a link](https://news.example.org/x)"
    mail = render_alert(AlertContent(kind, "S", fields), RECIPIENT, SITE)
    assert "**" not in mail.text and "##" not in mail.text and "](" not in mail.text


def preview_block(html: str) -> str:
    return re.search(r"<body[^>]*>(<div[^>]*>)", html).group(1)


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
def test_the_preheader_is_hidden_without_the_low_contrast_trick(kind):
    mail = render_alert(
        AlertContent(kind, "S", ALL_FIELDS[kind], "Read this first"), RECIPIENT, SITE
    )
    block = preview_block(mail.html)
    assert block == '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
    assert mail.html.index(block) < mail.html.index("Read this first")


@pytest.mark.parametrize("name", list(TRANSACTIONAL))
def test_transactional_preheaders_are_hidden_the_same_way(name):
    mail = render_template_file(name, TRANSACTIONAL[name], "en")
    assert preview_block(mail.html) == (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
    )
    assert "font-size:1px" not in mail.html


@pytest.mark.parametrize("kind", list(ALL_FIELDS))
def test_the_mail_says_its_language(kind):
    mail = render_alert(AlertContent(kind, "S", ALL_FIELDS[kind]), RECIPIENT, SITE, lang="be")
    assert '<html lang="be"' in mail.html


@pytest.mark.parametrize("opening", ["<mjml>", "<mjml >", '<mjml dir="ltr">', "\n  <mjml>"])
def test_a_custom_layout_says_the_alerts_language(opening):
    layout = f"{opening}<mj-body><mj-section><mj-column><mj-text>{{{{ title }}}}</mj-text>" \
        "</mj-column></mj-section></mj-body></mjml>"  # fmt: skip
    mail = render_alert(
        AlertContent("new_post", "S", ALL_FIELDS["new_post"]), RECIPIENT, SITE, layout, "uk"
    )
    assert '<html lang="uk"' in mail.html


def test_hashtag_day_share_actions_are_buttons():
    mail = render_alert(
        AlertContent("hashtag_day", "S", ALL_FIELDS["hashtag_day"]), RECIPIENT, SITE
    )
    for network in ("X", "Bluesky", "Mastodon", "Facebook", "Telegram"):
        # mj-button renders a table cell with the button's colour around a padded link.
        button = re.search(
            rf'<a href="[^"]+"[^>]*padding:14px 28px[^>]*>\s*Post on {network}\s*</a>', mail.html
        )
        assert button, network
    assert "Post on Telegram: https://t.me/share/url?" in mail.text


def test_post_this_in_the_frozen_text_carries_the_public_link_not_a_tracked_one():
    frozen = freeze_content(AlertContent("hashtag_day", "S", ALL_FIELDS["hashtag_day"]), SITE)
    share_url = ALL_FIELDS["hashtag_day"]["share_url"]
    after = frozen.text.split("Post this:", 1)[1]
    post = after.strip().split("\n", 1)[0]
    assert post.endswith(share_url) and "/r/" not in post
    # The share buttons and other links stay tracked, as before.
    assert f"Post on X: {BASE}/r/" in frozen.text
    assert UNTRACKED_OPEN not in frozen.text and UNTRACKED_CLOSE not in frozen.text


def test_post_this_in_a_preview_has_no_marks():
    mail = render_alert(
        AlertContent("hashtag_day", "S", ALL_FIELDS["hashtag_day"]), RECIPIENT, SITE
    )
    assert UNTRACKED_OPEN not in mail.text and UNTRACKED_CLOSE not in mail.text + mail.html


@pytest.mark.parametrize("kind, field", [("newsletter", "body_md"), ("petition", "why")])
def test_a_markdown_image_in_a_mail_has_a_width_within_the_column(kind, field):
    fields = dict(ALL_FIELDS[kind], **{field: f"![Ales]({OWN_IMAGE})"})
    fields.pop("image_url", None)  # the petition's own picture is not the one looked at
    mail = render_alert(AlertContent(kind, "S", fields), RECIPIENT, SITE)
    (img,) = images(mail.html)
    width = re.search(r'\bwidth="(\d+)"', img)
    assert width and int(width[1]) <= 502 and "max-width:100%" in img


def test_a_new_posts_picture_narrower_than_the_column_keeps_its_size(tmp_path, monkeypatch):
    from clarion.config import reset_settings

    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path))
    reset_settings()
    monkeypatch.setattr("clarion.config._settings", None)  # forgotten again after the test
    small = media.media_url(BASE, media.store_image(tiny_png((300, 100)), tmp_path))
    wide = media.media_url(BASE, media.store_image(tiny_png((1200, 400)), tmp_path))
    for url, width in ((small, "300"), (wide, "552")):
        fields = dict(ALL_FIELDS["new_post"], image_url=url)
        (img,) = images(render_alert(AlertContent("new_post", "S", fields), RECIPIENT, SITE).html)
        assert f'width="{width}"' in img and "height:auto" in img, img


def test_the_privacy_policy_and_the_logo_link_stay_untracked_in_a_frozen_alert():
    site = SiteContext(
        "Free Them All",
        BASE,
        "Urgent alerts",
        logo_url=f"{BASE}/media/logo.png",
        blog_url="https://blog.example.org/",
        privacy_url="https://blog.example.org/privacy",
    )
    fields = {"body_md": "Read [the appeal](https://blog.example.org/appeal)."}
    frozen = freeze_content(AlertContent("newsletter", "S", fields), site)
    # Who reads the privacy policy is nobody's business: neither link is in the click table.
    assert "https://blog.example.org/privacy" not in frozen.links
    assert "https://blog.example.org/" not in frozen.links
    assert 'href="https://blog.example.org/privacy"' in frozen.html
    assert 'href="https://blog.example.org/"' in frozen.html
    assert "Privacy policy: https://blog.example.org/privacy" in frozen.text
    # The body's own links are still tracked, and no mark is left anywhere.
    assert frozen.links == ["https://blog.example.org/appeal"] and f"{BASE}/r/" in frozen.html
    for part in (frozen.html, frozen.text):
        assert UNTRACKED_OPEN not in part and UNTRACKED_CLOSE not in part and "\\u{" not in part


def test_a_notice_shows_the_privacy_policy_without_marks():
    site = SiteContext("Free Them All", BASE, privacy_url="https://blog.example.org/privacy")
    mail = render_template_file("confirm", TRANSACTIONAL["confirm"], site=site)
    assert 'href="https://blog.example.org/privacy"' in mail.html
    assert "Privacy policy: https://blog.example.org/privacy" in mail.text
    for part in (mail.html, mail.text):
        assert UNTRACKED_OPEN not in part and UNTRACKED_CLOSE not in part and "\\u{" not in part
