"""Rate limits kept in Redis, shared by every web process and worker."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from functools import lru_cache
from typing import cast

from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import NoScriptError

from clarion.addresses import canonical_mailbox
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
    # hmac.digest: the one-shot C function (~1 µs instead of ~5 µs for an HMAC object); a
    # page of readers asks for 50 of these to find the suppressions by keyed hash.
    return hmac.digest(secret, email.encode(), hashlib.sha256).hex()[:32]


def mailbox_key(email: str) -> str:
    """A keyed hash of the mailbox an address reaches (+tags and Gmail dots folded)."""
    return address_key(canonical_mailbox(email))


def network_key(ip: str) -> str:
    """The network a client address stands for: an IPv4 address, or the /64 of an IPv6 one.

    One IPv6 host is commonly given a whole /64; counting single addresses would give it
    2**64 fresh budgets.
    """
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def hit(spec: str, *identifiers: str, cost: int = 1) -> bool:
    """Count `cost` attempts against `spec` (like "20/hour"); False (and none counted) when
    they would go over the limit."""
    return _limiter(get_settings().redis_url).hit(_limit(spec), "clarion", *identifiers, cost=cost)


def hit_reading(spec: str, identifiers: tuple[str, ...], key: str) -> tuple[bool, bytes | None]:
    """`hit`, and the value of the Redis key `key`, in one round trip.

    limits' own moving-window script on limits' own key, sent in one pipeline with the GET:
    the API reads the editors' standing stamp on every request, and a second round trip
    cost it ~80 µs of CPU (bench/README.md, API).
    """
    item = _limit(spec)
    storage = cast(RedisStorage, _limiter(get_settings().redis_url).storage)
    window = storage.prefixed_key(item.key_for("clarion", *identifiers))
    script = storage.lua_acquire_moving_window

    def send() -> tuple[bool, bytes | None]:
        pipe = storage.storage.pipeline(transaction=False)
        pipe.evalsha(script.sha, 1, window, time.time(), item.amount, item.get_expiry(), 1)
        pipe.get(key)
        acquired, value = pipe.execute()
        return bool(acquired), value

    try:
        return send()
    except NoScriptError:  # Redis restarted, or its scripts were flushed: load it again
        storage.storage.script_load(script.script)
        return send()


def left(spec: str, *identifiers: str) -> tuple[int, float]:
    """How many attempts `spec` allows right now, and when none: the seconds until one more."""
    stats = _limiter(get_settings().redis_url).get_window_stats(
        _limit(spec), "clarion", *identifiers
    )
    if stats.remaining > 0:
        return stats.remaining, 0.0
    return 0, max(0.0, stats.reset_time - time.time())


def wait_seconds(spec: str, *identifiers: str) -> int:
    """Whole seconds until `spec` lets one more attempt through (for Retry-After)."""
    stats = _limiter(get_settings().redis_url).get_window_stats(
        _limit(spec), "clarion", *identifiers
    )
    return max(1, math.ceil(stats.reset_time - time.time()))


def once_per(key: str, seconds: int) -> bool:
    """True the first time `key` is seen within `seconds`, False after that."""
    return bool(get_redis().set(f"clarion:once:{key}", b"1", nx=True, ex=seconds))


def forget(key: str) -> None:
    """Forget a once_per key (when the guarded action failed and may be retried)."""
    get_redis().delete(f"clarion:once:{key}")


# --- Password guesses -----------------------------------------------------------------------
# A hard lock that anyone can trigger with five requests is itself an attack: it shuts the
# owner out. So failures are counted per (account, client address), where a block only stops
# that address, and, more slowly, per account from everywhere, where it only spaces attempts.
GUESSES_PER_ADDRESS = 5
GUESS_WINDOW_SECONDS = 15 * 60
GUESSES_BEFORE_BACKOFF = 20
ACCOUNT_WINDOW_SECONDS = 60 * 60
MAX_BACKOFF_SECONDS = 60


def _guess_keys(account: str, ip: str | None) -> tuple[str, str]:
    who = address_key(account.strip().lower())
    where = address_key(network_key(ip or "?"))
    return f"clarion:guess:acct:{who}", f"clarion:guess:pair:{who}:{where}"


def backoff_seconds(failures: int) -> int:
    """How long the account waits after its last failure once many came from everywhere."""
    if failures < GUESSES_BEFORE_BACKOFF:
        return 0
    return min(MAX_BACKOFF_SECONDS, 2 ** (failures - GUESSES_BEFORE_BACKOFF))


def guessing_blocked(account: str, ip: str | None, now: float) -> bool:
    """True when this address has guessed too often for this account, or it is backing off."""
    acct, pair = _guess_keys(account, ip)
    redis = get_redis()
    if int(redis.get(pair) or 0) >= GUESSES_PER_ADDRESS:
        return True
    failures, last = redis.hmget(acct, "n", "last")
    return now - float(last or 0) < backoff_seconds(int(failures or 0))


def guess_failed(account: str, ip: str | None, now: float) -> bool:
    """Count one wrong password or code; True when this failure starts a block."""
    acct, pair = _guess_keys(account, ip)
    pipe = get_redis().pipeline()
    pipe.incr(pair)
    pipe.expire(pair, GUESS_WINDOW_SECONDS)
    pipe.hincrby(acct, "n", 1)
    pipe.hset(acct, "last", str(now))
    pipe.expire(acct, ACCOUNT_WINDOW_SECONDS)
    per_address, _, failures, _, _ = pipe.execute()
    return per_address == GUESSES_PER_ADDRESS or failures == GUESSES_BEFORE_BACKOFF


def guess_succeeded(account: str, ip: str | None) -> None:
    """A right answer from this address clears its own count (not other addresses')."""
    get_redis().delete(_guess_keys(account, ip)[1])


def forget_guesses(account: str) -> None:
    """Clear every count for an account (an owner lifted the block)."""
    acct, pair = _guess_keys(account, None)
    redis = get_redis()
    keys = [acct, *redis.scan_iter(pair.rpartition(":")[0] + ":*", count=1000)]
    redis.delete(*keys)
