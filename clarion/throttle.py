"""Rate limits kept in Redis, shared by every web process and worker."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from clarion.config import get_settings
from clarion.redisconn import get_redis


@lru_cache(maxsize=4)
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(RedisStorage(redis_url))


@lru_cache(maxsize=64)
def _limit(spec: str) -> RateLimitItem:
    return parse(spec)


def address_key(email: str) -> str:
    """A keyed hash of an address, so Redis never holds the address itself."""
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, email.encode(), hashlib.sha256).hexdigest()[:32]


def hit(spec: str, *identifiers: str) -> bool:
    """Count one attempt against `spec` (like "20/hour"); False when over the limit."""
    return _limiter(get_settings().redis_url).hit(_limit(spec), "clarion", *identifiers)


def once_per(key: str, seconds: int) -> bool:
    """True the first time `key` is seen within `seconds`, False after that."""
    return bool(get_redis().set(f"clarion:once:{key}", b"1", nx=True, ex=seconds))


def forget(key: str) -> None:
    """Forget a once_per key (when the guarded action failed and may be retried)."""
    get_redis().delete(f"clarion:once:{key}")
