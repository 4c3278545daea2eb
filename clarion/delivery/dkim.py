"""DKIM signing (RFC 6376, relaxed/relaxed) through OpenSSL: rsa-sha256 and/or ed25519-sha256.

The message builder hands over header fields already canonicalised and the body hash, so a
signature costs one RSA (~0.25 ms) or Ed25519 (~0.03 ms) operation and nothing else. Several
keys sign each message once each (RFC 8463 1: an Ed25519 signature beside an RSA one, for
verifiers that know only RSA); a second key is paid for only when it is configured.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from clarion.config import Settings
from clarion.errors import ConfigError

_FOLD = re.compile(r"\r\n(?=[ \t])")
_WSP = re.compile(r"[ \t]+")
_BODY_WSP_EOL = re.compile(rb"[ \t]+\r\n")
_BODY_WSP = re.compile(rb"[ \t]+")
MIN_RSA_BITS = 2048


def relaxed_header(name: str, value: str) -> bytes:
    """One header field in relaxed canonical form, with its CRLF (RFC 6376 3.4.2)."""
    if "\r" in value or "\t" in value or "  " in value:  # the regexes only when they matter
        value = _WSP.sub(" ", _FOLD.sub("", value))
    value = value.strip()
    return f"{name.strip().lower()}:{value}\r\n".encode()


def relaxed_body(body: bytes) -> bytes:
    """The body in relaxed canonical form (RFC 6376 3.4.4); CRLF line endings expected."""
    body = _BODY_WSP.sub(b" ", _BODY_WSP_EOL.sub(b"\r\n", body))
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def body_hash(canonical_body: bytes) -> str:
    """The bh= value of an already canonical body."""
    return base64.b64encode(hashlib.sha256(canonical_body).digest()).decode()


def _fold(value: str, width: int = 72) -> str:
    # Folding whitespace inside b= and bh= is ignored by verifiers (RFC 6376 3.5).
    return "\r\n\t".join(value[i : i + width] for i in range(0, len(value), width))


class DkimSigner:
    """Signs with one key for one domain and selector; `headers` is the h= list, in which a
    field may be named more often than it occurs (over-signing: RFC 6376 8.15)."""

    def __init__(self, domain: str, selector: str, key_pem: bytes, headers: tuple[str, ...]):
        key = serialization.load_pem_private_key(key_pem, password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ConfigError("CLARION_DKIM_KEY_FILE", f"an RSA key of {MIN_RSA_BITS} bits")
            self.algorithm = "rsa-sha256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "ed25519-sha256"
        else:
            raise ConfigError("CLARION_DKIM_KEY_FILE", "an RSA or Ed25519 private key in PEM")
        self._key = key
        self.domain = domain
        self.selector = selector
        self.headers = tuple(h.lower() for h in headers)
        self._h = ":".join(self.headers)  # joined once: the h= list is the same per alert

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463: Ed25519 signs the SHA-256 hash of the header data.
        return self._key.sign(hashlib.sha256(data).digest())  # type: ignore[union-attr]

    def signature(self, canonical_headers: bytes, bh: str, timestamp: int) -> str:
        """The DKIM-Signature value over headers given canonical, in `self.headers` order."""
        tags = (
            f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector};"
            f"\r\n\tt={timestamp}; h={self._h};\r\n\tbh={bh};\r\n\tb="
        )
        data = canonical_headers + relaxed_header("DKIM-Signature", tags)[:-2]
        return tags + _fold(base64.b64encode(self._sign(data)).decode())

    def dns_record(self) -> str:
        """The TXT record to publish at <selector>._domainkey.<domain>."""
        public = self._key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


@lru_cache(maxsize=16)  # a few keys, each with the h= lists of alerts and notices
def _load(domain: str, selector: str, key_file: Path, headers: tuple[str, ...]) -> DkimSigner:
    return DkimSigner(domain, selector, key_file.read_bytes(), headers)


def signers_for(settings: Settings, headers: tuple[str, ...]) -> tuple[DkimSigner, ...]:
    """The configured signers, one per key (loaded once per process); none without DKIM."""
    if not settings.dkim_domain:
        return ()
    domain = settings.dkim_domain
    return tuple(_load(domain, selector, path, headers) for selector, path in settings.dkim_keys)


def signer_for(settings: Settings, headers: tuple[str, ...]) -> DkimSigner | None:
    """The first configured signer, or None when DKIM is not set up."""
    return next(iter(signers_for(settings, headers)), None)
