"""DKIM that resists tampering: over-signed fields, RSA and Ed25519 keys together, checked by
dkimpy and by an independent verifier (Perl's Mail::DKIM, as SpamAssassin uses it)."""

from __future__ import annotations

import re

import pytest

from clarion.config import get_settings, reset_settings
from clarion.delivery.messages import OVERSIGNED, AlertFrame, Recipient, Skeleton
from clarion.errors import ConfigError
from tests.dkimcheck import dkimpy_results, mail_dkim
from tests.sendkit import write_keys

DOMAIN = "example.org"


@pytest.fixture
def env(env):
    """The unit settings, signing for DOMAIN."""
    env.setenv("CLARION_DKIM_DOMAIN", DOMAIN)
    reset_settings()
    return env


@pytest.fixture
def keys(tmp_path):
    return write_keys(tmp_path)


def build(reply_to: str | None = None) -> tuple[bytes, dict[str, str]]:
    """One alert message, signed as configured, and the TXT records of its keys."""
    frame = AlertFrame(
        alert_id=7,
        alert_uid="AlertUid7",
        subject="Write to Ales today",
        html="<p>Dear reader</p>",
        text="Dear reader\n",
        meta={
            "from": "Free Them <alerts@example.org>",
            "reply_to": reply_to,
            "list": {"id": 1, "slug": "urgent", "name": "Urgent"},
        },
    )
    skeleton = Skeleton(frame, get_settings())
    message = skeleton.build(Recipient(41, "uid41", "reader@example.org", "Ana"))
    records = {f"{s.selector}._domainkey.{s.domain}": s.dns_record() for s in skeleton._signers}
    return message.data, records


def h_list(raw: bytes) -> list[list[str]]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    found = re.findall(r"(?<![a-z])h=([^;]+);", re.sub(r"\r\n[ \t]+", " ", head))
    return [[n.strip().lower() for n in h.split(":")] for h in found]


def test_every_oversigned_field_is_named_once_more_than_it_occurs(env, keys):
    env.setenv("CLARION_DKIM_SELECTOR", "sel")
    env.setenv("CLARION_DKIM_KEY_FILE", str(keys["rsa"]))
    reset_settings()
    raw, _ = build(reply_to="help@example.org")
    [h] = h_list(raw)
    head = raw.split(b"\r\n\r\n", 1)[0].decode().lower()
    for name in (n.lower() for n in OVERSIGNED):
        occurs = len(re.findall(rf"(?m)^{re.escape(name)}:", head))
        assert h.count(name) == occurs + 1, name


def test_rsa_and_ed25519_sign_together_and_both_verify(env, keys, tmp_path):
    env.setenv("CLARION_DKIM_KEYS", f"rsa2026:{keys['rsa']}, ed2026:{keys['ed25519']}")
    reset_settings()
    assert [s for s, _ in get_settings().dkim_keys] == ["rsa2026", "ed2026"]
    raw, records = build()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"a=rsa-sha256" in head and b"a=ed25519-sha256" in head
    assert dkimpy_results(raw, records) == [True, True]
    checked = {c.algorithm: c for c in mail_dkim(raw, records, tmp_path)}
    assert checked["rsa-sha256"].result == "pass", checked
    # Debian's Mail::DKIM knows no Ed25519 (RFC 8463 1: hence the RSA signature beside it);
    # it must call that one unverifiable, never the message forged.
    assert checked["ed25519-sha256"].result in ("pass", "invalid"), checked


def _added_reply_to(raw: bytes) -> bytes:
    return b"Reply-To: attacker@evil.example\r\n" + raw


def _added_cc(raw: bytes) -> bytes:
    return b"Cc: attacker@evil.example\r\n" + raw


def _added_from(raw: bytes) -> bytes:
    return b"From: Your Bank <security@bank.example>\r\n" + raw


def _appended_footer(raw: bytes) -> bytes:
    return raw + b"\r\nVisit https://evil.example/ to claim your prize\r\n"


# Before over-signing, an added Reply-To or Cc passed dkimpy and Mail::DKIM, a second From
# passed Mail::DKIM (seen on the old code with the same message and verifiers).
@pytest.mark.parametrize("tamper", [_added_reply_to, _added_cc, _added_from, _appended_footer])
def test_tampering_breaks_every_signature_for_both_verifiers(env, keys, tmp_path, tamper):
    env.setenv("CLARION_DKIM_KEYS", f"rsa2026:{keys['rsa']},ed2026:{keys['ed25519']}")
    reset_settings()
    raw, records = build()
    assert dkimpy_results(raw, records) == [True, True]
    assert [c.result for c in mail_dkim(raw, records, tmp_path) if c.algorithm == "rsa-sha256"] == [
        "pass"
    ]
    forged = tamper(raw)
    assert dkimpy_results(forged, records) == [False, False]
    checked = mail_dkim(forged, records, tmp_path)
    assert checked and all(c.result != "pass" for c in checked), checked


def test_the_single_key_settings_still_work(env, keys):
    env.setenv("CLARION_DKIM_SELECTOR", "sel")
    env.setenv("CLARION_DKIM_KEY_FILE", str(keys["ed25519"]))
    reset_settings()
    settings = get_settings()
    assert settings.dkim_keys == (("sel", keys["ed25519"]),)
    assert settings.dkim_selector == "sel" and settings.dkim_key_file == keys["ed25519"]
    raw, records = build()
    assert raw.count(b"DKIM-Signature:") == 1 and dkimpy_results(raw, records) == [True]


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"CLARION_DKIM_KEYS": "no-colon-here"}, "CLARION_DKIM_KEYS"),
        ({"CLARION_DKIM_KEYS": "a:{rsa},a:{ed25519}"}, "CLARION_DKIM_KEYS"),
        ({"CLARION_DKIM_KEYS": "a:{rsa}", "CLARION_DKIM_SELECTOR": "b"}, "CLARION_DKIM_KEYS"),
        ({"CLARION_DKIM_KEYS": "a:/nowhere/key.pem"}, "CLARION_DKIM_KEY_FILE"),
        ({"CLARION_DKIM_SELECTOR": "b"}, "CLARION_DKIM_DOMAIN"),
    ],
)
def test_bad_key_settings_say_what_to_fix(env, keys, values, variable):
    for name, value in values.items():
        env.setenv(name, value.format(rsa=keys["rsa"], ed25519=keys["ed25519"]))
    reset_settings()
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert caught.value.variable == variable
