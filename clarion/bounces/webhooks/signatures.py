"""Proof that a Mailgun, SendGrid or Postmark webhook came from the provider: HMAC with a fresh
timestamp and a token never seen before, ECDSA over timestamp and body, HTTP basic auth."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from clarion.errors import WebhookRefused

# Claim a token for `ttl` seconds: True the first time, False when it was seen before.
FirstUse = Callable[[str, int], bool]


def _fresh(timestamp: object, now: float, max_age: int) -> None:
    try:
        age = abs(now - int(str(timestamp)))
    except ValueError:
        raise WebhookRefused("The webhook's timestamp is not a number.", 400) from None
    if age > max_age:
        raise WebhookRefused("The webhook's timestamp is too old or in the future.")


def verify_mailgun(
    payload: dict[str, Any], key: str, now: float, max_age: int, first_use: FirstUse
) -> None:
    """Mailgun: hex HMAC-SHA256 of timestamp + token under the signing key, fresh, unused."""
    signed = payload.get("signature")
    if not isinstance(signed, dict):
        raise WebhookRefused("The Mailgun signature is missing.", 400)
    timestamp, token = str(signed.get("timestamp", "")), str(signed.get("token", ""))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(expected, str(signed.get("signature", ""))):
        raise WebhookRefused("The Mailgun signature does not match.")
    _fresh(timestamp, now, max_age)
    # A captured request replayed within the freshness window carries a used token.
    if not first_use(f"mailgun:{token}", 2 * max_age):
        raise WebhookRefused("This Mailgun webhook was already received.", 409)


def verify_sendgrid(
    body: bytes, signature: str, timestamp: str, public_key: bytes, now: float, max_age: int
) -> None:
    """SendGrid: base64 DER ECDSA (P-256, SHA-256) over timestamp + the raw body, fresh."""
    key = load_der_public_key(public_key)
    assert isinstance(key, ec.EllipticCurvePublicKey)  # checked when the settings were read
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        key.verify(raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRefused("The SendGrid signature does not match.") from None
    _fresh(timestamp, now, max_age)


def verify_basic_auth(authorization: str, expected: tuple[str, str]) -> None:
    """Postmark: the user and password set on the webhook URL, as HTTP basic auth."""
    scheme, _, encoded = authorization.partition(" ")
    try:
        given = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    user, _, password = given.partition(":")
    ok_user = hmac.compare_digest(user.encode(), expected[0].encode())
    ok_password = hmac.compare_digest(password.encode(), expected[1].encode())
    if scheme.lower() != "basic" or not (ok_user and ok_password):
        raise WebhookRefused("Wrong or missing webhook credentials.", 401)
