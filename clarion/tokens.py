"""Signed tokens for public URLs and bounce addresses: unguessable, tamper-evident, no emails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner
from itsdangerous.encoding import base64_encode, want_bytes

from clarion.errors import InvalidToken
from clarion.i18n import gettext as _

# Purposes, each its own salt, so a token for one thing is never accepted for another.
CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
READER = "reader"
SIGNATURE_CONFIRM = "signature-confirm"
DATA_EXPORT = "data-export"
MAILBOX_PROOF = "mailbox-proof"  # shown once, on the page a confirmation link leads to
STAY = "stay"  # the "Yes, keep me" page of a "stay subscribed?" mail
# Where the "Yes, keep me" button of a "stay subscribed?" mail points, under the base URL; the
# click path adds the reader's stay token when a reader follows it.
STAY_PATH = "/stay"


def _secret() -> str:
    from clarion.config import get_settings

    return get_settings().secret_key


class _BulkSigner(Signer):
    """itsdangerous's Signer, its tokens unchanged, made for signing two per message: the key
    derived once, not per token, and the HMAC in one call (a third of the cost per token)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        key = self.__dict__.get("_derived")
        if key is None:
            key = self.__dict__["_derived"] = super().derive_key()
        return key

    def get_signature(self, value: str | bytes) -> bytes:
        return base64_encode(hmac.digest(self.derive_key(), want_bytes(value), "sha256"))


@lru_cache(maxsize=32)
def _signer(secret: str, purpose: str) -> Signer:
    return _BulkSigner(secret, salt=f"clarion.{purpose}", digest_method=hashlib.sha256)


@lru_cache(maxsize=32)
def _timed_signer(secret: str, purpose: str) -> TimestampSigner:
    return TimestampSigner(secret, salt=f"clarion.{purpose}", digest_method=hashlib.sha256)


def sign(purpose: str, value: str, secret: str | None = None) -> str:
    """A token that proves `value` came from us, for `purpose`, forever."""
    return _signer(secret or _secret(), purpose).sign(value).decode()


def unsign(purpose: str, token: str, secret: str | None = None) -> str:
    """The value inside a token; InvalidToken when forged, altered or for another purpose."""
    try:
        return _signer(secret or _secret(), purpose).unsign(token).decode()
    except (BadSignature, UnicodeError) as exc:
        raise InvalidToken(_("This link is not valid.")) from exc


def sign_timed(purpose: str, value: str, secret: str | None = None) -> str:
    """A token that proves `value` came from us and when; checked with a maximum age."""
    return _timed_signer(secret or _secret(), purpose).sign(value).decode()


def unsign_timed(purpose: str, token: str, max_age: int, secret: str | None = None) -> str:
    """The value inside a timed token; InvalidToken when expired, forged or altered."""
    try:
        return _timed_signer(secret or _secret(), purpose).unsign(token, max_age=max_age).decode()
    except SignatureExpired as exc:
        raise InvalidToken(_("This link has expired.")) from exc
    except (BadSignature, UnicodeError) as exc:
        raise InvalidToken(_("This link is not valid.")) from exc


# --- A reader's own links: one-click unsubscribe and the preference centre ---------------


@dataclass(frozen=True)
class UnsubscribeScope:
    """Who and what a one-click unsubscribe token covers: some lists, an alert's lists, or all."""

    subscriber_uid: str
    list_ids: tuple[int, ...] = ()
    alert_uid: str | None = None

    @property
    def everything(self) -> bool:
        return not self.list_ids and self.alert_uid is None


def unsubscribe_token(
    subscriber_uid: str, list_ids: Iterable[int] = (), alert_uid: str | None = None
) -> str:
    """A permanent signed token for the one-click unsubscribe URL."""
    if alert_uid:
        scope = f"a{alert_uid}"
    elif list_ids:
        scope = "l" + "-".join(str(i) for i in sorted(set(list_ids)))
    else:
        scope = "all"
    return sign(UNSUBSCRIBE, f"{subscriber_uid}~{scope}")


def read_unsubscribe_token(token: str) -> UnsubscribeScope:
    """Decode an unsubscribe token; InvalidToken when forged or altered."""
    value = unsign(UNSUBSCRIBE, token)
    uid, _, scope = value.partition("~")
    if scope == "all":  # before the alert scope: "all" starts with its "a" too
        return UnsubscribeScope(uid)
    if scope.startswith("a"):
        return UnsubscribeScope(uid, alert_uid=scope[1:])
    if scope.startswith("l"):
        return UnsubscribeScope(uid, list_ids=tuple(int(i) for i in scope[1:].split("-")))
    return UnsubscribeScope(uid)


def preferences_token(subscriber_uid: str) -> str:
    """A permanent signed token for the preference centre link."""
    return sign(PREFERENCES, subscriber_uid)


def mailbox_proof(subscriber_uid: str) -> str:
    """A short-lived token saying this reader has just confirmed from their mailbox."""
    return sign_timed(MAILBOX_PROOF, subscriber_uid)


def holds_mailbox_proof(subscriber_uid: str, token: str | None, max_age: int) -> bool:
    """True when `token` is a mailbox proof for this reader, younger than `max_age` seconds."""
    if not token:
        return False
    try:
        return unsign_timed(MAILBOX_PROOF, token, max_age=max_age) == subscriber_uid
    except InvalidToken:
        return False


# Delivery token purposes: each has its own keys, so a token seen in one place (a link in a
# forwarded mail) is worthless in another (the bounce envelope, the mailto: unsubscribe).
CLICK = "click"  # the tracked links and the open pixel: in the body, may be forwarded
VERP = "verp"  # the envelope sender b+<token>@: only in the SMTP envelope and Return-Path
MAILTO = "mailto"  # unsubscribe+<token>@ of the List-Unsubscribe header, never in the body
# The envelope sender b+<token>@ of a transactional mail (a confirmation, a data link): the same
# address form as VERP, its own keys, and it names a NoticeMail row instead of a delivery.
NOTICE_VERP = "notice-verp"
# Before purposes existed one token served all three. Mail already sent carries it in its
# links, so the click path still follows it (without recognising the reader); nothing else
# accepts it.
LEGACY = "legacy"
DELIVERY_PURPOSES = (CLICK, VERP, MAILTO, NOTICE_VERP, LEGACY)


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)  # 10 bits -> two characters


def _base32(block: bytes) -> str:
    """16 bytes as base64.b32encode spells them, lower case, unpadded: 26 characters.

    Every message carries three tokens, and the standard library's base32 is written in
    Python; ten bits at a time from one integer costs a fraction of it."""
    n = int.from_bytes(block, "big") << 2  # 128 bits padded to 130, as RFC 4648 does
    pairs = _B32_PAIRS
    return "".join([pairs[(n >> shift) & 1023] for shift in range(120, -1, -10)])


class DeliveryTokens:
    """Encodes a delivery id as a 26-character lowercase token for one purpose.

    Bounce addresses pass through MTAs that may change the case of the local part, so the
    token is base32 (case-insensitive), and it must not reveal the sequential id, so the id
    and a 64-bit HMAC tag are enciphered together as one AES block: decoding checks the tag,
    so a forged or altered token is refused with overwhelming probability.
    """

    def __init__(self, secret: str, purpose: str = CLICK) -> None:
        if purpose not in DELIVERY_PURPOSES:
            raise ValueError(f"unknown delivery token purpose {purpose!r}")
        label = "clarion.delivery-token" if purpose == LEGACY else f"clarion.{purpose}-token"
        key = hashlib.sha256(f"{label}:{secret}".encode()).digest()
        self._cipher = Cipher(algorithms.AES(key[:16]), modes.ECB())  # noqa: S305 single block
        # ECB keeps no state between blocks: one context serves every token (and saves ~20 µs
        # a message on the bulk path).
        self._encryptor = self._cipher.encryptor()
        self._lock = threading.Lock()
        self._mac_key = key[16:]

    def _tag(self, delivery_id: int) -> bytes:
        # hmac.digest is the one-shot C path: a third of the cost of an HMAC object.
        return hmac.digest(self._mac_key, struct.pack(">Q", delivery_id), "sha256")[:8]

    def encode(self, delivery_id: int) -> str:
        """The token for one delivery."""
        block = struct.pack(">Q", delivery_id) + self._tag(delivery_id)
        with self._lock:
            sealed = self._encryptor.update(block)
        return _base32(sealed)

    def decode(self, token: str) -> int:
        """The delivery id in a token; InvalidToken when it was not made by us."""
        if len(token) != 26 or not token.isalnum():
            raise InvalidToken(_("This link is not valid."))
        try:
            sealed = base64.b32decode(token.upper() + "======")
        except ValueError as exc:
            raise InvalidToken(_("This link is not valid.")) from exc
        # Only the canonical spelling is accepted: the unused low bits of the last character
        # must not give one delivery several valid tokens.
        if base64.b32encode(sealed).decode().rstrip("=").lower() != token.lower():
            raise InvalidToken(_("This link is not valid."))
        dec = self._cipher.decryptor()
        block = dec.update(sealed) + dec.finalize()
        delivery_id = struct.unpack(">Q", block[:8])[0]
        if not hmac.compare_digest(block[8:], self._tag(delivery_id)):
            raise InvalidToken(_("This link is not valid."))
        return delivery_id


def delivery_tokens(purpose: str, secret: str | None = None) -> DeliveryTokens:
    """The delivery token codec for one purpose and the configured secret."""
    return _codec(purpose, secret or _secret())


@lru_cache(maxsize=16)
def _codec(purpose: str, secret: str) -> DeliveryTokens:
    return DeliveryTokens(secret, purpose)
