"""Inbound settings are validated at start: each bad variable is named with what to fix."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clarion.config.bounces import load_bounce_settings, parse_imap_url
from clarion.errors import ConfigError


def _public_der(key) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def test_nothing_set_means_a_loopback_bounce_server_and_no_webhooks(bare_env):
    s = load_bounce_settings()
    assert (s.smtp_host, s.smtp_port, s.imap, s.ses_topic_arns) == ("127.0.0.1", 2525, None, ())
    assert s.mailgun_signing_key is s.sendgrid_public_key is s.postmark_auth is None


def test_everything_set(bare_env):
    bare_env.setenv("CLARION_BOUNCE_SMTP_LISTEN", "[::]:25")
    bare_env.setenv(
        "CLARION_BOUNCE_IMAP_URL",
        "imaps://bounces%40x.org:p%3Ass@mail.x.org/Bounces?processed=Done",
    )
    bare_env.setenv(
        "CLARION_SES_TOPIC_ARNS",
        "arn:aws:sns:eu-west-1:123456789012:a, arn:aws:sns:us-east-1:123456789012:b",
    )
    bare_env.setenv("CLARION_MAILGUN_SIGNING_KEY", "key-0123456789abcdef")
    bare_env.setenv(
        "CLARION_SENDGRID_PUBLIC_KEY", _public_der(ec.generate_private_key(ec.SECP256R1()))
    )
    bare_env.setenv("CLARION_POSTMARK_WEBHOOK_AUTH", "hook:a-password-long-enough")
    s = load_bounce_settings()
    assert (s.smtp_host, s.smtp_port) == ("::", 25)
    assert s.imap is not None and (s.imap.username, s.imap.password) == ("bounces@x.org", "p:ss")
    assert (s.imap.host, s.imap.port, s.imap.ssl, s.imap.folder, s.imap.move_to) == (
        "mail.x.org",
        993,
        True,
        "Bounces",
        "Done",
    )
    assert len(s.ses_topic_arns) == 2 and s.postmark_auth == ("hook", "a-password-long-enough")
    assert s.sendgrid_public_key is not None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CLARION_BOUNCE_SMTP_LISTEN", "25", "host:port"),
        ("CLARION_BOUNCE_IMAP_URL", "pop3://u:p@host/INBOX", "imaps://"),
        ("CLARION_BOUNCE_IMAP_URL", "imaps://host/INBOX", "user name and password"),
        ("CLARION_BOUNCE_IMAP_URL", "imaps://u:p@host/INBOX?after=delete", "processed=FOLDER"),
        ("CLARION_SES_TOPIC_ARNS", "MyTopic", "SNS topic ARNs"),
        ("CLARION_MAILGUN_SIGNING_KEY", "short", "at least 16"),
        ("CLARION_SENDGRID_PUBLIC_KEY", "not base64!", "verification key"),
        ("CLARION_POSTMARK_WEBHOOK_AUTH", "hook:short", "user:password"),
        ("CLARION_WEBHOOK_MAX_AGE", "5", "at least 30"),
    ],
)
def test_each_bad_variable_is_named(bare_env, variable, value, expected):
    bare_env.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        load_bounce_settings()
    assert refused.value.variable == variable and expected in str(refused.value)


def test_a_sendgrid_key_must_be_ecdsa(bare_env):
    bare_env.setenv(
        "CLARION_SENDGRID_PUBLIC_KEY", _public_der(rsa.generate_private_key(65537, 2048))
    )
    with pytest.raises(ConfigError, match="ECDSA"):
        load_bounce_settings()


def test_imap_without_processed_folder_deletes_and_plain_imap_has_its_port():
    mailbox = parse_imap_url("imap://u:sekret@127.0.0.1/INBOX")
    assert (mailbox.port, mailbox.ssl, mailbox.move_to) == (143, False, None)
    assert "sekret" not in mailbox.name  # the name goes to logs and de-duplication keys
