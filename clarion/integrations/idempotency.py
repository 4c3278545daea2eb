"""Idempotent POSTs: a request sent again with the same Idempotency-Key gets the first answer.

The key, the token and a hash of the request are written in the same transaction as what the
request does, with the answer: either both are committed or neither, so a retry after a lost
answer replays it, and a retry after a failure runs again. A second request racing the first
waits on the unique (token, key) row and then replays it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clarion.db import utcnow
from clarion.errors import ValidationError
from clarion.models import IdempotentRequest
from clarion.retention import IDEMPOTENCY_KEEP

KEEP = IDEMPOTENCY_KEEP  # the retention sweep drops older answers
HEADER = "Idempotency-Key"
MAX_KEY = 255


@dataclass(frozen=True)
class Replay:
    """The answer given the first time: status and JSON body."""

    status: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and body, hashed."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
        raise ValidationError(
            {HEADER: f"Use 1 to {MAX_KEY} printable ASCII characters, e.g. a random UUID."}
        )


def begin(session: Session, token_id: int, key: str, fingerprint: str) -> Replay | None:
    """The earlier answer for this key, or None after claiming the key for this request.

    ValidationError when the key was used with a different request.
    """
    _check_key(key)
    now = utcnow()
    session.execute(
        delete(IdempotentRequest).where(
            IdempotentRequest.token_id == token_id,
            IdempotentRequest.key == key,
            IdempotentRequest.created_at < now - KEEP,
        )
    )
    row = session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.token_id == token_id, IdempotentRequest.key == key
        )
    )
    if row is not None:
        if row.request_hash != fingerprint:
            raise ValidationError(
                {HEADER: "This key was used with a different request; use a new key."}
            )
        return Replay(row.status, dict(row.response))
    session.add(
        IdempotentRequest(token_id=token_id, key=key, request_hash=fingerprint, created_at=now)
    )
    session.flush()  # a racing twin blocks here (or fails on commit) until the first is done
    return None


def finish(session: Session, token_id: int, key: str, status: int, body: dict[str, Any]) -> None:
    """Keep the answer with the key, in the transaction about to commit."""
    row = session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.token_id == token_id, IdempotentRequest.key == key
        )
    )
    if row is not None:
        row.status = status
        row.response = body
