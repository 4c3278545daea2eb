"""Configuration: defaults work with nothing set; each bad variable is named with what to fix."""

from __future__ import annotations

import pytest

from clarion.config import load_settings, parse_smtp_url
from clarion.errors import ConfigError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("CLARION_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_embedded_defaults_need_no_configuration(clean_env, tmp_path):
    s = load_settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'instance' / 'clarion.db'}"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert [srv.name for srv in s.smtp_servers] == ["127.0.0.1:1025"]
    assert s.base_url == "http://127.0.0.1:5000"
    assert len(s.secret_key) >= 32
    # The generated key is kept, so restarts do not invalidate links already mailed.
    assert load_settings().secret_key == s.secret_key
    assert s.open_tracking is False


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CLARION_SMTP_URL", "http://mail.example.org", "smtp://"),
        ("CLARION_SMTP_URL", "smtp://mail.example.org:25?tls=maybe", "tls=starttls"),
        ("CLARION_SMTP_URL", "smtp://mail.example.org:notaport", "numeric port"),
        ("CLARION_SMTP_URL", "smtp://mail.example.org?colour=red", "colour"),
        ("CLARION_BASE_URL", "example.org", "absolute http(s) URL"),
        ("CLARION_DATABASE_URL", "mysql://x/y", "postgresql://"),
        ("CLARION_REDIS_URL", "memcached://x", "redis://"),
        ("CLARION_FROM", "nobody", "Name <alerts@example.org>"),
        ("CLARION_SECRET_KEY", "short", "32"),
        ("CLARION_TIMEZONE", "Mars/Olympus", "IANA"),
        ("CLARION_BATCH_SIZE", "lots", "whole number"),
        ("CLARION_OPEN_TRACKING", "perhaps", "true or false"),
        ("CLARION_SUBSCRIBE_LIMIT_PER_IP", "many", "20/hour"),
        ("CLARION_LANGUAGES", "english", "code=Label"),
        ("CLARION_EMBED_ORIGINS", "blog.example.org", "https://"),
        ("CLARION_DKIM_DOMAIN", "example.org", "set together"),
    ],
)
def test_bad_variable_is_named_with_what_is_expected(clean_env, variable, value, expected):
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert expected in str(caught.value)


def test_production_requires_a_secret_key(clean_env):
    clean_env.setenv("CLARION_ENV", "production")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == "CLARION_SECRET_KEY"


def test_dotenv_file_is_read_but_environment_wins(clean_env, tmp_path):
    (tmp_path / ".env").write_text(
        "CLARION_BASE_URL=https://news.example.org/\nCLARION_SITE_NAME=From dotenv\n"
    )
    clean_env.setenv("CLARION_SITE_NAME", "From environment")
    s = load_settings()
    assert s.base_url == "https://news.example.org"
    assert s.site_name == "From environment"


def test_smtp_urls_with_credentials_tls_and_sending_options():
    srv = parse_smtp_url(
        "smtp://user%40org:p%3Ass@relay.example.org:587?tls=starttls&rate=20&max_connections=8&weight=3"
    )
    assert (srv.host, srv.port, srv.username, srv.password) == (
        "relay.example.org",
        587,
        "user@org",
        "p:ss",
    )
    assert (srv.tls, srv.rate, srv.max_connections, srv.weight) == ("starttls", 20.0, 8, 3)
    assert parse_smtp_url("smtps://relay.example.org").port == 465
    assert parse_smtp_url("smtps://relay.example.org").tls == "ssl"


def test_several_smtp_servers_comma_separated(clean_env):
    clean_env.setenv(
        "CLARION_SMTP_URL", "smtp://a.example.org:25, smtp://b.example.org:2525?weight=2"
    )
    s = load_settings()
    assert [(x.host, x.port, x.weight) for x in s.smtp_servers] == [
        ("a.example.org", 25, 1),
        ("b.example.org", 2525, 2),
    ]


def test_postgres_urls_use_psycopg3(clean_env):
    clean_env.setenv("CLARION_DATABASE_URL", "postgres://u@db.example.org/clarion")
    assert load_settings().database_url == "postgresql+psycopg://u@db.example.org/clarion"
