"""RFC 9457 problem details: how /api/v1 says what went wrong, naming each field to fix."""

from __future__ import annotations

from flask import Response, jsonify, request

API_PREFIX = "/api/v1"
PROBLEM_JSON = "application/problem+json"


def for_api() -> bool:
    """True for requests to the REST API, which always answer in problem+json."""
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def problem(
    status: int,
    title: str,
    detail: str = "",
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Response, int]:
    """A problem+json response; `fields` maps each field (or header) to what to fix."""
    body: dict = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if fields:
        body["errors"] = [{"field": k, "detail": v} for k, v in fields.items()]
    response = jsonify(body)
    response.mimetype = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response, status
