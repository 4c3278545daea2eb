"""The OpenAPI 3.1 document of /api/v1, built from the operations and their schemas.

apispec (with its marshmallow plugin) writes OpenAPI 3.1 from the same marshmallow schemas
that check each request, and takes no part in handling requests: our own wrapper keeps the
token, idempotency and problem+json rules in one place. spectree and flask-smorest would each
bring their own request handling and error format to bend to ours.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from clarion.inputs import MAX_ID
from webapp.api.v1 import schemas as s
from webapp.api.v1.core import OPERATIONS, Operation

PATH_ARG = re.compile(r"<(?:int:)?(\w+)>")
SCOPES_HELP = {
    "read": "look (view)",
    "write": "change drafts, petitions, readers, lists and tags",
    "send": "schedule and send",
    "import": "add readers as confirmed",
}


def api_path(rule: str) -> str:
    return "/api/v1" + PATH_ARG.sub(r"{\1}", rule)


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        }
        for name in PATH_ARG.findall(op.rule)
    ]
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    if op.idempotent:
        params.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "description": "Send the same key again to get the first answer, not a second "
                "action; the same key with another body is refused (422). Kept 24 hours.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if op.method == "PATCH" and op.etag:
        params.append(
            {
                "in": "header",
                "name": "If-Match",
                "required": False,
                "description": "The ETag read with GET; 412 when the resource changed since.",
                "schema": {"type": "string"},
            }
        )
    return params


def _operation(op: Operation) -> dict[str, Any]:
    if op.content == "application/json":
        content = {op.content: {"schema": op.response}} if op.response else {}
    else:
        content = {op.content: {"schema": {"type": "string"}}}
    ok: dict[str, Any] = {"description": "Done", "content": content}
    if op.etag:
        ok["headers"] = {"ETag": {"schema": {"type": "string"}}}
    spec: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"token": [op.scope]}],
        "description": f"Needs a token with the `{op.scope}` scope"
        + (f" and an editor whose role has `{op.permission}`." if op.permission else "."),
        "parameters": _parameters(op),
        "responses": {
            str(op.status): ok,
            "default": {
                "description": "A problem (RFC 9457), naming each field to fix",
                "content": {"application/problem+json": {"schema": s.Problem}},
            },
        },
    }
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.body}},
        }
    return spec


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    spec = APISpec(
        title="Clarion API",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Readers, lists, tags, alerts, petitions and suppressions. "
            "Authenticate with `Authorization: Bearer <token>` (admin → Account, or "
            "`clarion api-tokens create`)."
        },
    )
    spec.components.security_scheme(
        "token",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token. Scopes: "
            + "; ".join(f"{name}: {help}" for name, help in SCOPES_HELP.items()),
        },
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(api_path(op.rule), {})[op.method.lower()] = _operation(op)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
