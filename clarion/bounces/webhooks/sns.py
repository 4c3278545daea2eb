"""Amazon SNS messages: signature versions 1 and 2, certificates only from SNS hosts, topic
allowlist, subscription confirmation by visiting SubscribeURL on an SNS host only."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from clarion.errors import FetchRefused, WebhookRefused

# https://sns.<region>.amazonaws.com/... (and amazonaws.com.cn in the China regions)
SNS_HOST = re.compile(r"sns\.[a-z0-9-]{1,32}\.amazonaws\.com(?:\.cn)?")
CERT_SUBJECT = "sns.amazonaws.com"
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")

# GET a URL and return its body; the real one is clarion.fetch, tests inject their own.
Fetcher = Callable[[str], bytes]


def verify(message: dict[str, Any], topics: Sequence[str], fetch: Fetcher) -> None:
    """Accept an SNS message only from an allowed topic and with a valid signature."""
    kind = message.get("Type")
    if kind not in MESSAGE_TYPES:
        raise WebhookRefused("Not an SNS message.", 400)
    if message.get("TopicArn") not in topics:
        raise WebhookRefused("This SNS topic is not allowed (CLARION_SES_TOPIC_ARNS).")
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise WebhookRefused("Unknown SNS signature version.")
    certificate = _certificate(_sns_url(message.get("SigningCertURL"), ".pem"), fetch)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except binascii.Error:
        raise WebhookRefused("The SNS signature is not base64.") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRefused("The SNS certificate does not hold an RSA key.")
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise WebhookRefused("The SNS signature does not match the message.") from None


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text SNS signs: "Name\\nvalue\\n" for each field, in a fixed order."""
    names = NOTIFICATION_FIELDS if message.get("Type") == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def confirm_subscription(message: dict[str, Any], fetch: Fetcher) -> str:
    """Visit the SubscribeURL of a verified SubscriptionConfirmation; returns the URL."""
    url = _sns_url(message.get("SubscribeURL"), "")
    fetch(url)
    return url


def _sns_url(raw: object, suffix: str) -> str:
    """The URL, if it is https on an SNS host (and ends with `suffix`); refused otherwise."""
    url = str(raw or "")
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not SNS_HOST.fullmatch(parts.hostname or "")
        or parts.port not in (None, 443)
        or parts.username is not None
        or not parts.path.endswith(suffix)
    ):
        raise WebhookRefused("The SNS message points outside Amazon SNS.")
    return url


@lru_cache(maxsize=32)
def _certificate(url: str, fetch: Fetcher) -> x509.Certificate:
    """The signing certificate, fetched once per process; it must be current and be SNS's."""
    try:
        certificate = x509.load_pem_x509_certificate(fetch(url))
    except FetchRefused as exc:
        # Not the sender's fault, perhaps not theirs at all: SNS retries on a 5xx.
        raise WebhookRefused(f"Could not fetch the SNS signing certificate: {exc}", 503) from None
    except ValueError:
        raise WebhookRefused("The SNS signing certificate is not a PEM certificate.") from None
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise WebhookRefused("The SNS signing certificate is not valid now.")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [n.value for n in names] != [CERT_SUBJECT]:
        raise WebhookRefused("The SNS signing certificate is not issued to Amazon SNS.")
    return certificate
