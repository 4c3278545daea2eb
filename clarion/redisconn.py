"""The shared Redis connection: rate limits, click buffer, send-rate tokens, progress."""

from __future__ import annotations

import secrets

import redis

_clients: dict[str, redis.Redis] = {}


def get_redis(url: str | None = None) -> redis.Redis:
    """One client (with its own pool) per Redis URL per process."""
    if url is None:
        from clarion.config import get_settings

        url = get_settings().redis_url
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )
    return client


def stamp(key: str) -> str | None:
    """The random value kept under `key`, made on first use (None: evicted at once again).

    Random rather than counted: Redis restarted empty must not bring back a value a process
    still holds from before.
    """
    client = get_redis()
    value = client.get(key)
    if value is None:
        client.set(key, secrets.token_hex(8), nx=True)
        value = client.get(key)
    return value.decode() if value is not None else None


def renew_stamp(key: str) -> None:
    """Give `key` a new random value: whoever compares with the old one starts over."""
    get_redis().set(key, secrets.token_hex(8))


def reset_redis() -> None:
    """Drop cached clients (after a fork, or when tests switch servers)."""
    for client in _clients.values():
        client.close()
    _clients.clear()
