"""Freezing an alert and building its messages: markers, tracked links, MIME, headers, DKIM."""

from __future__ import annotations

import email
import email.policy

import dkim as dkimpy
import pytest
from dkim.canonicalization import Relaxed

from clarion.alerts.freeze import (
    LinkTable,
    freeze_content,
    marker,
    rewrite_html_links,
    rewrite_text_links,
    split_markers,
)
from clarion.alerts.rendering import AlertContent, SiteContext
from clarion.config import get_settings, reset_settings
from clarion.delivery import dkim
from clarion.delivery.messages import AlertFrame, Recipient, Skeleton, Skeletons, greeting_for
from clarion.delivery.smtpclient import Outcome, Reply
from clarion.tokens import CLICK, MAILTO, VERP, delivery_tokens
from tests.sendkit import NEWSLETTER_BODY, write_keys

BASE = "https://news.example.org"


def test_html_links_become_tracked_once_each_and_markers_stay_direct():
    links = LinkTable(BASE)
    html = (
        '<a href="https://x.org/a?b=1&amp;c=2">A</a> <a class="b" href=\'https://x.org/a?b=1&c=2\'>'
        f'again</a> <a href="{marker("unsubscribe_url")}">Unsubscribe</a> '
        '<a href="mailto:help@x.org">mail</a> <img src="https://x.org/i.png">'
    )
    out = rewrite_html_links(html, links)
    assert links.urls == ["https://x.org/a?b=1&c=2"]
    assert out.count(f"{BASE}/r/{marker('token')}/0") == 2
    assert f'href="{marker("unsubscribe_url")}"' in out and "mailto:help@x.org" in out
    assert 'src="https://x.org/i.png"' in out  # not a link: checked elsewhere, never rewritten


def test_text_links_keep_their_trailing_punctuation():
    links = LinkTable(BASE)
    out = rewrite_text_links(
        "See https://x.org/p. And (https://y.org/q), then [t](https://z.org)", links
    )
    assert links.urls == ["https://x.org/p", "https://y.org/q", "https://z.org"]
    assert out == (
        f"See {BASE}/r/{marker('token')}/0. And ({BASE}/r/{marker('token')}/1), "
        f"then [t]({BASE}/r/{marker('token')}/2)"
    )


def test_freezing_renders_once_with_markers_for_each_recipient_field(env):
    frozen = freeze_content(
        AlertContent("newsletter", "Day 1000", {"body_md": NEWSLETTER_BODY}),
        SiteContext("Free Them All", BASE, "Alerts"),
    )
    for part in (frozen.html, frozen.text):
        names = split_markers(part)[1::2]
        assert {"greeting", "unsubscribe_url", "preferences_url", "token"} <= set(names)
    assert "blog.example.org" not in frozen.text
    assert 'href="https://blog' not in frozen.html  # a bare URL in HTML prose is not a link
    assert frozen.links[0] == "https://blog.example.org/letter"
    assert len(frozen.hash) == 64
    with pytest.raises(ValueError, match="unknown marker"):
        split_markers("a\ue000nope\ue001b")


def frame(html: str, text: str, meta: dict | None = None) -> AlertFrame:
    return AlertFrame(
        alert_id=7,
        alert_uid="AlertUid7",
        subject="Écrivez à Ales — 1,000 days",
        html=html,
        text=text,
        meta=meta
        or {
            "from": "Free Them <alerts@example.org>",
            "reply_to": None,
            "list": {"id": 1, "slug": "urgent", "name": "Urgent"},
        },
    )


def test_a_message_fills_only_the_recipient_fields_in_a_fixed_skeleton(env):
    html = f'<p>{marker("greeting")}</p><a href="{BASE}/r/{marker("token")}/0">x</a>'
    text = (
        f"{marker('greeting')}\nRead: {BASE}/r/{marker('token')}/0\n"
        f"Leave: {marker('unsubscribe_url')}\n"
    )
    skeleton = Skeleton(frame(html, text), get_settings())
    m = skeleton.build(Recipient(41, "subuid41", "ana@exämple.org", "Ana <b>"))
    assert b"\n" not in m.data.replace(b"\r\n", b"") and m.data.endswith(b"--\r\n")
    assert m.rcpt == "ana@xn--exmple-cua.org" and not m.smtputf8
    msg = email.message_from_bytes(m.data, policy=email.policy.default)
    assert msg["Subject"] == "Écrivez à Ales — 1,000 days"
    assert msg["To"] == "ana@xn--exmple-cua.org" and "Reply-To" not in msg
    assert msg["Message-ID"] == m.message_id == skeleton.message_id("subuid41")
    assert "ana" not in m.message_id and m.message_id.endswith("@example.org>")
    assert msg.get_body(("html",)).get_content().startswith("<p>Hello Ana &lt;b&gt;,</p>")
    body = msg.get_body(("plain",)).get_content()
    assert "\r\n" in body  # text is encoded in canonical form (RFC 2045): CRLF line ends
    body = body.replace("\r\n", "\n")
    click, verp, mailto = (delivery_tokens(p).encode(41) for p in (CLICK, VERP, MAILTO))
    assert m.envelope_from == f"b+{verp}@b.example.org"
    assert body.startswith("Hello Ana <b>,\n") and f"/r/{click}/0" in body
    assert f"Leave: {BASE}/unsubscribe/" in body
    assert msg["List-Unsubscribe"] == (
        f"<{body.split('Leave: ')[1].strip()}>, <mailto:unsubscribe+{mailto}@b.example.org>"
    )
    # Three tokens, one per purpose; the body a reader may forward holds the click token alone.
    assert len({click, verp, mailto}) == 3
    assert verp not in body + msg.get_body(("html",)).get_content() and mailto not in body
    assert msg["Feedback-ID"] == "AlertUid7:urgent:example.org"
    other = skeleton.build(Recipient(42, "subuid42", "bo@example.org", None))
    assert other.message_id != m.message_id and b"Hello," in _decoded(other.data)


def _decoded(data: bytes) -> bytes:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content().encode()


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_signed_messages_verify_and_their_body_is_already_canonical(env, tmp_path, algorithm):
    key = write_keys(tmp_path)[algorithm]
    env.setenv("CLARION_DKIM_DOMAIN", "example.org")
    env.setenv("CLARION_DKIM_SELECTOR", "sel")
    env.setenv("CLARION_DKIM_KEY_FILE", str(key))
    reset_settings()
    meta = {
        "from": "Free Them <alerts@example.org>",
        "reply_to": "Help  desk <help@example.org>",
        "list": {"id": 1, "slug": "urgent", "name": "Urgent   actions"},
    }
    skeleton = Skeleton(frame("<p>  two  spaces  </p>", "a  b \n\n\n", meta), get_settings())
    m = skeleton.build(Recipient(1, "u1", "r@example.org", "R"))
    record = skeleton._signers[0].dns_record().encode()
    assert dkimpy.verify(m.data, dnsfunc=lambda name, timeout=5: record)
    body = m.data.split(b"\r\n\r\n", 1)[1]
    assert Relaxed.canonicalize_body(body) == body
    # The HTML is quoted-printable, its runs of spaces written encoded; the text, so short
    # that base64 is shorter, base64.
    assert b"quoted-printable\r\n\r\n<p> =20two" in body and b"base64" in body
    assert b"<p> =20two =20spaces =20</p>" in body
    assert not dkimpy.verify(
        m.data.replace(b"=20two", b"=20twa"), dnsfunc=lambda n, timeout=5: record
    )


def test_relaxed_canonicalisation_matches_the_rfc():
    assert dkim.relaxed_header("Subject", " a \r\n\t b  c ") == b"subject:a b c\r\n"
    assert dkim.relaxed_body(b"a  \t b \r\n\r\n\r\n") == b"a b\r\n"
    assert dkim.relaxed_body(b"\r\n\r\n") == b""


def test_greeting_uses_the_name_only_when_there_is_one():
    assert greeting_for("  Ana   Maria ") == "Hello Ana Maria,"
    assert greeting_for(None) == greeting_for("") == "Hello,"


@pytest.mark.parametrize(
    ("code", "text", "stage", "expected"),
    [
        (250, "2.0.0 OK", "end", "sent"),
        (451, "4.3.0 later", "end", "defer"),
        (421, "4.3.2 closing", "mail", "defer"),
        (550, "5.1.1 unknown user", "rcpt", "fail"),
        (552, "5.2.2 mailbox full", "end", "fail"),
        (550, "5.7.1 not authorised", "rcpt", "policy"),
        # The bounce rules decide what a 5xx at RCPT blames: our host, or the address.
        (550, "Client host [192.0.2.7] blocked using zen.spamhaus.org", "rcpt", "policy"),
        (550, "5.7.1 <a@example.org>: Recipient address rejected: User unknown", "rcpt", "fail"),
        (535, "5.7.8 bad credentials", "mail", "policy"),
        (553, "5.1.8 sender domain unknown", "mail", "policy"),
        (554, "Transaction failed", "data", "policy"),
    ],
)
def test_each_reply_has_one_meaning(code, text, stage, expected):
    from clarion.delivery.batchrun import verdict

    assert verdict(Outcome(Reply(code, text), stage)) == expected


def test_the_greeting_speaks_the_alerts_language():
    assert greeting_for("  Ana   Maria ", "be") == "Вітаем, Ana Maria!"
    assert greeting_for(None, "ru") == "Здравствуйте!"
    assert greeting_for("Ola", "pl") == "Dzień dobry, Ola!"


def test_the_skeleton_greets_in_the_frozen_language_or_the_default_if_it_was_removed(env):
    html = f"<p>{marker('greeting')}</p>"
    text = f"{marker('greeting')}\n"
    meta = {**frame(html, text).meta, "language": "uk"}
    m = Skeleton(frame(html, text, meta), get_settings()).build(
        Recipient(5, "subuid5", "ana@example.org", "Ana")
    )
    assert _decoded(m.data).decode().startswith("Вітаємо, Ana!")
    assert email.message_from_bytes(m.data)["Content-Language"] == "uk"
    env.setenv("CLARION_LANGUAGES", "en=English,be=Беларуская")  # Ukrainian no longer offered
    reset_settings()
    m = Skeleton(frame(html, text, meta), get_settings()).build(
        Recipient(5, "subuid5", "ana@example.org", "Ana")
    )
    assert _decoded(m.data).decode().startswith("Hello Ana,")
    assert email.message_from_bytes(m.data)["Content-Language"] == "en"


def test_a_layout_frozen_in_a_language_carries_its_lang_and_its_words(env):
    frozen = freeze_content(
        AlertContent("newsletter", "Дзень 1000", {"body_md": NEWSLETTER_BODY}),
        SiteContext("Free Them All", BASE, "Alerts"),
        lang="be",
    )
    assert '<html lang="be"' in frozen.html
    footer = "Вы атрымліваеце гэты ліст ад Free Them All (Alerts), бо падпісаліся."  # noqa: RUF001
    assert footer in frozen.text
    assert "You receive this" not in frozen.html + frozen.text


def test_versions_share_one_link_table_so_a_link_keeps_its_index_in_every_language(env):
    links = LinkTable(BASE)
    site = SiteContext("Free Them All", BASE, "Alerts")
    body_en = "Read https://x.org/en and write https://x.org/write."
    body_ru = "Пишите https://x.org/write и читайте https://x.org/ru."
    en = freeze_content(
        AlertContent("newsletter", "S", {"body_md": body_en}), site, None, "en", links
    )
    ru = freeze_content(
        AlertContent("newsletter", "Тема", {"body_md": body_ru}), site, None, "ru", links
    )
    assert links.urls == ["https://x.org/en", "https://x.org/write", "https://x.org/ru"]
    assert f"/r/{marker('token')}/1" in en.text and f"/r/{marker('token')}/1" in ru.text
    assert f"/r/{marker('token')}/2" in ru.text and en.hash != ru.hash


def test_each_reader_gets_the_skeleton_of_their_language_and_a_removed_one_the_primary(env):
    meta = {
        "from": "Free Them <alerts@example.org>",
        "reply_to": None,
        "list": {"id": 1, "slug": "urgent", "name": "Urgent"},
        "language": "en",
    }
    versions = {
        code: {"subject": f"subject {code}", "html": f"<p>{marker('greeting')} {code}</p>",
               "text": f"{marker('greeting')} {code}\n"}
        for code in ("be", "ru")
    }  # fmt: skip
    primary = frame(f"<p>{marker('greeting')} en</p>", f"{marker('greeting')} en\n", meta)
    skeletons = Skeletons.build(primary, versions, get_settings())

    def got(language):
        m = skeletons.for_reader(language).build(Recipient(5, "u5", "r@example.org", "Ana"))
        msg = email.message_from_bytes(m.data, policy=email.policy.default)
        return msg["Content-Language"], msg.get_body(("plain",)).get_content().strip()

    assert got("ru") == ("ru", f"{ru_hello()} ru")
    assert got("be")[0] == "be" and got("be")[1].endswith(" be")
    assert got("pl") == ("en", "Hello Ana, en") and got(None) == ("en", "Hello Ana, en")
    # ru is removed from CLARION_LANGUAGES after the freeze: its readers get the primary.
    env.setenv("CLARION_LANGUAGES", "en=English,be=Беларуская")
    reset_settings()
    skeletons = Skeletons.build(primary, versions, get_settings())
    assert got("ru") == ("en", "Hello Ana, en") and got("be")[0] == "be"


def ru_hello() -> str:
    from clarion import i18n

    return i18n.gettext("Hello %(name)s,", "ru", name="Ana")
