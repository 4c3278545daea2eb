"""Small helpers shared by the views."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest

from clarion.errors import ValidationError
from clarion.inputs import whole_number


def client_ip() -> str | None:
    """The client's address (ProxyFix has already applied trusted forwarding headers)."""
    return request.remote_addr


def user_agent() -> str | None:
    """The client's User-Agent, trimmed."""
    ua = request.headers.get("User-Agent")
    return ua[:400] if ua else None


def whole(raw: object, field_name: str) -> int:
    """One id or count from a request; 400 Bad Request saying what to fix when it is not one.

    ASCII digits only and within BIGINT: "²" passes str.isdigit() but not int(), and a huge
    number overflows the database column it is compared with.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise BadRequest(f"{field_name}: expected a whole number.")
    try:
        return whole_number(str(raw), field_name)
    except ValidationError as exc:
        raise BadRequest(str(exc)) from None


def int_list(values: list, field_name: str = "lists") -> list[int]:
    """Ids from form values (empty ones skipped); 400 when one is not a whole number."""
    return [whole(v, field_name) for v in values if not (isinstance(v, str) and not v.strip())]


def optional_int(raw: str, field_name: str) -> int | None:
    """An optional id from a form or query value: None when empty, 400 when malformed."""
    return whole(raw, field_name) if raw.strip() else None


def int_arg(name: str) -> int | None:
    """A whole-number query argument: None when absent, 400 when malformed or out of range."""
    return optional_int(request.args.get(name, ""), name)
