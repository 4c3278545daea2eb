"""Settings of the inbound paths (bounce server, IMAP mailbox, provider webhooks), validated at
start from CLARION_* variables like the rest of `clarion.config`."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from clarion.errors import ConfigError

# arn:aws:sns:us-east-1:123456789012:ses-bounces (also the aws-cn and aws-us-gov partitions)
TOPIC_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:sns:[a-z0-9-]{1,32}:\d{12}:[A-Za-z0-9_-]{1,256}")
MIN_SECRET = 16


@dataclass(frozen=True)
class ImapMailbox:
    """A mailbox that receives bounces, and what happens to a message once it is processed."""

    host: str
    port: int
    ssl: bool
    username: str
    password: str
    folder: str = "INBOX"
    move_to: str | None = None  # a folder; None deletes processed messages

    @property
    def name(self) -> str:
        """A label for logs and de-duplication: no credentials."""
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


@dataclass(frozen=True)
class BounceSettings:
    """Where bounces and complaints come in, and the secrets that prove a webhook is genuine."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_max_bytes: int = 10 * 1024 * 1024
    imap: ImapMailbox | None = None
    imap_interval: float = 60.0
    ses_topic_arns: tuple[str, ...] = ()
    mailgun_signing_key: str | None = None
    sendgrid_public_key: bytes | None = None  # DER SubjectPublicKeyInfo
    postmark_auth: tuple[str, str] | None = None
    webhook_max_age: int = 300


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _listen() -> tuple[str, int]:
    raw = _env("CLARION_BOUNCE_SMTP_LISTEN") or "127.0.0.1:2525"
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("CLARION_BOUNCE_SMTP_LISTEN", f"host:port like 0.0.0.0:25, got {raw!r}")
    return host.strip("[]"), int(port)


def parse_imap_url(url: str, name: str = "CLARION_BOUNCE_IMAP_URL") -> ImapMailbox:
    """Parse `imaps://user:pass@host[:port]/FOLDER[?processed=FOLDER]` (imap:// is STARTTLS-less
    plain IMAP, for loopback only)."""
    parts = urlsplit(url)
    expected = "imaps://user:password@host/INBOX[?processed=Folder]"
    if parts.scheme not in {"imap", "imaps"} or not parts.hostname:
        raise ConfigError(name, f"{expected}, got a URL without that shape")
    if not parts.username or parts.password is None:
        raise ConfigError(name, f"{expected}: the user name and password are missing")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError:
        raise ConfigError(name, f"{expected}: the port is not a number") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    move_to = query.pop("processed", None)
    if query:
        raise ConfigError(name, f"only the processed=FOLDER option, got {', '.join(query)}")
    return ImapMailbox(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "imaps",
        username=unquote(parts.username),
        password=unquote(parts.password),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        move_to=None if move_to in (None, "", "delete") else move_to,
    )


def _topics() -> tuple[str, ...]:
    raw = _env("CLARION_SES_TOPIC_ARNS") or ""
    arns = tuple(a.strip() for a in raw.split(",") if a.strip())
    for arn in arns:
        if not TOPIC_ARN.fullmatch(arn):
            raise ConfigError(
                "CLARION_SES_TOPIC_ARNS",
                f"SNS topic ARNs like arn:aws:sns:eu-west-1:123456789012:bounces, got {arn!r}",
            )
    return arns


def _secret(name: str) -> str | None:
    value = _env(name)
    if value is not None and len(value) < MIN_SECRET:
        raise ConfigError(name, f"the secret from the provider, at least {MIN_SECRET} characters")
    return value


def _sendgrid_key() -> bytes | None:
    """The Event Webhook's verification key: base64 DER as SendGrid shows it, or PEM."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
        load_pem_public_key,
    )

    name = "CLARION_SENDGRID_PUBLIC_KEY"
    raw = _env(name)
    if raw is None:
        return None
    try:
        if "BEGIN PUBLIC KEY" in raw:
            key = load_pem_public_key(raw.replace("\\n", "\n").encode())
        else:
            key = load_der_public_key(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ConfigError(name, "the Event Webhook verification key (base64 or PEM)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(name, "an ECDSA public key, as SendGrid gives it")
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _postmark_auth() -> tuple[str, str] | None:
    name = "CLARION_POSTMARK_WEBHOOK_AUTH"
    raw = _env(name)
    if raw is None:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or len(password) < MIN_SECRET:
        raise ConfigError(name, f"user:password, the password at least {MIN_SECRET} characters")
    return user, password


def _number(name: str, default: int, minimum: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(name, f"a whole number of at least {minimum}, got {raw!r}")
    return int(raw)


def load_bounce_settings() -> BounceSettings:
    """Read and validate the inbound settings; ConfigError names the first bad variable."""
    host, port = _listen()
    imap_url = _env("CLARION_BOUNCE_IMAP_URL")
    return BounceSettings(
        smtp_host=host,
        smtp_port=port,
        smtp_max_bytes=_number("CLARION_BOUNCE_MAX_BYTES", 10 * 1024 * 1024, 64 * 1024),
        imap=parse_imap_url(imap_url) if imap_url else None,
        imap_interval=float(_number("CLARION_BOUNCE_IMAP_INTERVAL", 60, 5)),
        ses_topic_arns=_topics(),
        mailgun_signing_key=_secret("CLARION_MAILGUN_SIGNING_KEY"),
        sendgrid_public_key=_sendgrid_key(),
        postmark_auth=_postmark_auth(),
        webhook_max_age=_number("CLARION_WEBHOOK_MAX_AGE", 300, 30),
    )
