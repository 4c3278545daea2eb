"""Personalisation fields: the short list checked, fallbacks, escaping, and the same values in a
rendering for one reader and in the message the send path builds for that reader."""

from __future__ import annotations

import email
import email.policy

import pytest

from clarion.alerts import personal
from clarion.alerts.freeze import freeze_content, shown, split_markers
from clarion.alerts.rendering import AlertContent, SiteContext, render_alert
from clarion.delivery.messages import AlertFrame, Recipient, Skeleton, greeting_for
from clarion.errors import ValidationError

BASE = "https://news.example.org"
SITE = SiteContext("Free Them All", BASE, "Alerts")
META = {
    "from": "Free Them <alerts@example.org>",
    "reply_to": None,
    "list": {"id": 1, "slug": "urgent", "name": "Urgent"},
}


def problems(text: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    personal.check({"body_md": text}, errors)
    return errors


@pytest.mark.parametrize(
    "text",
    [
        "Hi {{ first_name }}!",
        "{{first_name|default(\"friend\")}} and {{ name | default('reader') }}",
        "In {{ language }}.",
        "No fields at all, {braces} and } alone.",
    ],
)
def test_the_listed_fields_with_or_without_a_default_are_accepted(text):
    assert problems(text) == {}


def test_an_unknown_field_is_named_with_the_fields_to_use():
    message = problems("Dear {{ frist_name }},")["body_md"]
    assert "{{ frist_name }}" in message
    assert "{{ first_name }}" in message and "{{ name }}" in message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{{ email }}", "{{ email }}"),
        ("{{ first_name | upper }}", "{{ first_name | upper }}"),
        ("{{ first_name | default(name) }}", "{{ first_name | default(name) }}"),
        ("{{ 7*7 }}", "{{ 7*7 }}"),
        ("{{ name.__class__ }}", "{{ name.__class__ }}"),
        ("{% if name %}x{% endif %}", "{%"),
        ("Hello {{ first_name", "{{"),
        ("{# note #}", "{#"),
    ],
)
def test_anything_else_of_jinja_is_refused_and_named(text, named):
    assert named in problems(text)["body_md"]


def test_a_fallback_longer_than_the_cap_is_refused():
    long = "x" * (personal.MAX_FALLBACK + 1)
    assert "default" in problems(f'{{{{ name | default("{long}") }}}}')["body_md"]


def test_reader_values_never_hold_the_address():
    values = personal.reader_values("  Ales   Bialiatski ")
    assert values == {"first_name": "Ales", "name": "Ales Bialiatski"}
    assert personal.reader_values(None) == {"first_name": "", "name": ""}


def content(body: str, subject: str = "News") -> AlertContent:
    return AlertContent("newsletter", subject, {"body_md": body})


def recipient(name: str | None) -> dict[str, str]:
    return {
        "greeting": greeting_for(name),
        "unsubscribe_url": f"{BASE}/unsubscribe/T",
        "preferences_url": f"{BASE}/preferences/T",
    }


def test_a_rendering_shows_the_reader_value_escaped_or_the_fallback(env):
    body = 'Dear **{{ first_name | default("friend") }}**, you read {{ language }}.'
    named = render_alert(
        content(body, "For {{ name }}"),
        recipient("<b>Ales</b> B"),
        SITE,
        reader=personal.reader_values("<b>Ales</b> B"),
    )
    assert "<strong>&lt;b&gt;Ales&lt;/b&gt;</strong>" in named.html
    assert "<b>Ales" not in named.html
    assert "Dear <b>Ales</b>," in named.text
    assert named.subject == "For <b>Ales</b> B"
    anonymous = render_alert(content(body), recipient(None), SITE)
    assert "<strong>friend</strong>" in anonymous.html and "you read English." in anonymous.text


def test_a_field_in_a_link_address_is_refused(env):
    with pytest.raises(ValidationError) as caught:
        render_alert(content("[me](https://x.example/?n={{ name }})"), recipient(None), SITE)
    assert "address" in caught.value.errors["body_md"]


def test_unknown_fields_saved_before_the_check_render_as_typed(env):
    mail = render_alert(content("{{ 7*7 }} {{ frist_name }}"), recipient(None), SITE)
    assert "{{ 7*7 }} {{ frist_name }}" in mail.text


def _built(frozen, name: str | None) -> email.message.EmailMessage:
    frame = AlertFrame(7, "AlertUid7", frozen.subject, frozen.html, frozen.text, META)
    from clarion.config import get_settings

    data = Skeleton(frame, get_settings()).build(Recipient(1, "ReaderUid", "r@example.org", name))
    return email.message_from_bytes(data.data, policy=email.policy.default)


@pytest.mark.parametrize("name", ["Ales & <Co>", None])
def test_the_send_path_fills_each_reader_like_a_rendering_for_them(env, name):
    body = 'Dear {{ first_name | default("friend & co") }}, see **{{ name }}**.'
    subject = '{{ first_name | default("Friend") }}: day 1000'
    frozen = freeze_content(content(body, subject), SITE)
    slots = split_markers(frozen.html)[1::2]
    assert "first_name\ue004friend &amp; co" in slots and "name\ue004" in slots
    message = _built(frozen, name)
    expected = render_alert(
        content(body, subject), recipient(name), SITE, reader=personal.reader_values(name)
    )
    assert message["Subject"] == expected.subject
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    first = "Ales" if name else "friend &amp; co"
    assert f"Dear {first}, see <strong>{'Ales &amp; &lt;Co&gt;' if name else ''}</strong>" in html
    assert expected.html.count(f"Dear {first}") == html.count(f"Dear {first}") == 1
    assert expected.text.split("\n")[2] == text.split("\n")[2]  # the body's first line


def test_a_subject_without_fields_stays_static_and_signed_once(env):
    frozen = freeze_content(content("Hi {{ name }}", "Plain subject"), SITE)
    message = _built(frozen, "Ales")
    assert message["Subject"] == "Plain subject"


def test_a_frozen_subject_is_shown_as_written_or_as_a_reader_got_it(env):
    subject = '{{ first_name | default("Friend") }}, {{ name }}: day 1000 in {{ language }}'
    frozen = freeze_content(content("Hi", subject), SITE).subject
    assert "\ue000" in frozen  # the per-recipient fields are markers until the send fills them
    # Editors' pages show the fields as they are written, never the private-use marks.
    assert shown(frozen) == '{{ first_name | default("Friend") }}, {{ name }}: day 1000 in English'
    # A reader's own data shows the subject as they got it.
    assert shown(frozen, personal.reader_values("Ales Bialiatski")) == (
        "Ales, Ales Bialiatski: day 1000 in English"
    )
    assert shown(frozen, personal.reader_values(None)) == "Friend, : day 1000 in English"
    assert shown("No fields") == "No fields" and shown(None) == ""
