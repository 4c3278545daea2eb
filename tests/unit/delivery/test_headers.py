"""Encoded-words on the wire: at most 75 characters, folded lines of at most 78, characters
never split, decoding to the text written; in bulk alerts and in transactional mail."""

from __future__ import annotations

import base64
import re
from email.header import decode_header, make_header
from email.utils import formataddr

import pytest

from clarion.alerts.rendering import RenderedMail
from clarion.config import get_settings, reset_settings
from clarion.delivery import mailer
from clarion.delivery.headers import address_field, encoded_words
from clarion.delivery.messages import AlertFrame, Recipient, Skeleton

ENCODED_WORD = re.compile(rb"=\?([^?]+)\?([bBqQ])\?([^?]*)\?=")
LONG_NAME = "Международная правозащитная организация «Свобода политическим заключённым»"
LONG_SUBJECT = (
    "Срочно: напишите письмо в поддержку политзаключённых — осталось всего три дня до суда, "
    "и каждое письмо важно 🕊"
)


@pytest.fixture
def env(env):
    """The unit settings, sending as a long display name."""
    env.setenv("CLARION_FROM", f"{LONG_NAME} <news@example.org>")
    reset_settings()


def fields(raw: bytes) -> dict[str, bytes]:
    """The header block's fields by lower-case name, still folded (as on the wire)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    found = {}
    for field in re.split(rb"\r\n(?![ \t])", head):
        name, _, value = field.partition(b":")
        found[name.decode().lower()] = value
    return found


def check_words(name: str, value: bytes) -> str:
    """Every encoded-word ≤ 75 and whole UTF-8, every line ≤ 78; returns the decoded text."""
    words = ENCODED_WORD.findall(value)
    assert words, f"{name}: no encoded-word in {value!r}"
    for whole in ENCODED_WORD.finditer(value):
        assert len(whole.group(0)) <= 75, f"{name}: {len(whole.group(0))} characters"
    for charset, kind, text in words:
        assert charset.lower() == b"utf-8" and kind in b"bB"
        base64.b64decode(text).decode("utf-8")  # raises on a split character
    for number, line in enumerate(value.split(b"\r\n")):
        width = len(line) + (len(name) + 1 if number == 0 else 0)
        assert width <= 78, f"{name}: a line of {width} characters"
    assert b"  " not in value, f"{name}: a fold with two spaces"
    return str(make_header(decode_header(value.decode("ascii").replace("\r\n", ""))))


@pytest.mark.parametrize("used", [0, 6, 9, 30])
def test_encoded_words_fit_and_decode(used):
    value = encoded_words(LONG_SUBJECT * 2, used).encode()
    assert check_words("x" * max(used - 2, 0), value) == LONG_SUBJECT * 2


def test_an_address_field_folds_before_an_address_that_would_not_fit():
    value = address_field(LONG_NAME, "alerts.bounces.example.org", len("List-Id: "))
    assert value.endswith("<alerts.bounces.example.org>")
    assert all(len(line) <= 78 for line in value.split("\r\n"))
    assert address_field("Plain Name", "a@example.org") == "Plain Name <a@example.org>"


def test_bulk_from_subject_and_list_id_carry_short_words(env):
    frame = AlertFrame(
        alert_id=7,
        alert_uid="AlertUid7",
        subject=LONG_SUBJECT,
        html="<p>x</p>",
        text="x",
        meta={
            "from": formataddr((LONG_NAME, "alerts@example.org")),
            "reply_to": None,
            "list": {"id": 1, "slug": "urgent", "name": LONG_NAME},
        },
    )
    message = Skeleton(frame, get_settings()).build(Recipient(41, "uid41", "r@example.org"))
    found = fields(message.data)
    assert check_words("From", found["from"]) == f"{LONG_NAME} <alerts@example.org>"
    assert check_words("Subject", found["subject"]) == LONG_SUBJECT
    assert check_words("List-Id", found["list-id"]) == f"{LONG_NAME} <urgent.b.example.org>"


def test_transactional_from_subject_and_reply_to_carry_short_words(env):
    notice = mailer.Notice(
        "test",
        "r@example.org",
        RenderedMail(LONG_SUBJECT, "<p>x</p>", "x"),
        reply_to=formataddr((LONG_NAME, "reply@example.org")),
    )
    built = mailer.build(notice, "b+x@b.example.org", get_settings())
    assert built.data.isascii() and not built.smtputf8
    found = fields(built.data)
    assert check_words("From", found["from"]) == f"{LONG_NAME} <news@example.org>"
    assert check_words("Subject", found["subject"]) == LONG_SUBJECT
    assert check_words("Reply-To", found["reply-to"]) == f"{LONG_NAME} <reply@example.org>"


def test_a_reply_to_with_a_non_ascii_name_and_domain_needs_no_smtputf8(env):
    frame = AlertFrame(
        alert_id=7,
        alert_uid="AlertUid7",
        subject="Hi",
        html="<p>x</p>",
        text="x",
        meta={
            "from": "Свобода <news@пример.рф>",
            "reply_to": "Отдел помощи <help@пример.рф>",
            "list": {"id": 1, "slug": "urgent", "name": "Urgent"},
        },
    )
    message = Skeleton(frame, get_settings()).build(Recipient(41, "uid41", "r@example.org"))
    head = message.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and not message.smtputf8
    found = fields(message.data)
    assert check_words("Reply-To", found["reply-to"]) == "Отдел помощи <help@xn--e1afmkfd.xn--p1ai>"
    assert check_words("From", found["from"]) == "Свобода <news@xn--e1afmkfd.xn--p1ai>"
