"""Small helpers shared by the views."""

from __future__ import annotations

from flask import request


def client_ip() -> str | None:
    """The client's address (ProxyFix has already applied trusted forwarding headers)."""
    return request.remote_addr


def user_agent() -> str | None:
    """The client's User-Agent, trimmed."""
    ua = request.headers.get("User-Agent")
    return ua[:400] if ua else None


def int_list(values: list[str]) -> list[int]:
    """Integers from form values, silently skipping junk (validation reports what is missing)."""
    return [int(v) for v in values if v.strip().isdigit()]


def int_arg(name: str) -> int | None:
    """A whole-number query argument, or None when absent or malformed."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None
