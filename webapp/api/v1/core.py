"""How each /api/v1 operation runs: token, scope, body checked by its schema, idempotency,
ETags, one commit, then the work that must wait for it; and the list the OpenAPI is built from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import marshmallow
from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import BadRequest, NotFound, PreconditionFailed, Unauthorized

from clarion.errors import ValidationError
from clarion.inputs import MAX_ID
from clarion.integrations import apitokens, idempotency
from webapp.api.v1.dumping import compile_schema
from webapp.extensions import db, read_only_db
from webapp.utils import client_ip

bp = Blueprint("v1", __name__)


@dataclass
class Operation:
    """One documented operation: what it needs, takes and gives."""

    name: str
    rule: str
    method: str
    scope: str
    summary: str
    tag: str
    body: type[marshmallow.Schema] | None = None
    query: type[marshmallow.Schema] | None = None
    response: type[marshmallow.Schema] | None = None
    status: int = 200
    permission: str | None = None
    idempotent: bool = False
    etag: bool = False
    content: str = "application/json"
    # A GET that writes (an export recorded in the audit log) says so: other reads get a
    # session that refuses to write.
    writes: bool = False


OPERATIONS: list[Operation] = []


@dataclass
class Reply:
    """What a view answers: status, JSON body, and work to do once the commit succeeded."""

    body: Any
    status: int = 200
    after_commit: list[Callable[[], object]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def token_use() -> apitokens.TokenUse:
    """The token that proved this request (set by the operation wrapper)."""
    return g.api_token


def etag_of(body: Any) -> str:
    """A strong ETag of a representation."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def if_match(current: Any) -> None:
    """412 when the client's If-Match names another version than the current one."""
    wanted = request.headers.get("If-Match")
    if wanted is None or wanted.strip() == "*":
        return
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    if etag_of(current) not in tags:
        raise PreconditionFailed("The resource changed since you read it; GET it again.")


def _authenticate() -> apitokens.TokenUse:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    use = None
    if scheme.lower() == "bearer" and secret.strip():
        use = apitokens.authenticate(db(), secret.strip(), reading=request.method == "GET")
    if use is None:
        raise Unauthorized(
            "Send a valid API token: Authorization: Bearer clarion_…",
            www_authenticate=WWWAuthenticate("bearer"),
        )
    return use


def _messages(errors: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested error messages as field -> one sentence."""
    flat: dict[str, str] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "body"
            flat.update(_messages(value, name))
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        flat[prefix or "body"] = " ".join(errors)
    else:
        flat[prefix or "body"] = str(errors)
    return flat


_SCHEMAS: dict[tuple[type[marshmallow.Schema], bool], marshmallow.Schema] = {}


def _schema(schema: type[marshmallow.Schema], many: bool = False) -> marshmallow.Schema:
    """One instance of each schema per process: building one copies every field (~1 ms).

    Loading and dumping keep no state on the instance (marshmallow 4 has no context), so the
    request threads share it.
    """
    instance = _SCHEMAS.get((schema, many))
    if instance is None:
        instance = _SCHEMAS[(schema, many)] = schema(many=many)
    return instance


def dump(schema: type[marshmallow.Schema], data: Any, *, many: bool = False) -> Any:
    """`data` as `schema` shows it, in one pass over the page (compiled from the schema)."""
    return compile_schema(_schema(schema, many))(data)


def load(schema: type[marshmallow.Schema], data: Any) -> dict[str, Any]:
    """Data checked against a schema; ValidationError (422) naming each field otherwise."""
    try:
        return _schema(schema).load(data)
    except marshmallow.ValidationError as exc:
        raise ValidationError(_messages(exc.messages)) from None


def _body(schema: type[marshmallow.Schema]) -> dict[str, Any]:
    if not request.is_json:
        raise BadRequest("Send a JSON body with Content-Type: application/json.")
    try:
        data = request.get_json()
    except BadRequest:
        raise BadRequest("The body is not valid JSON.") from None
    return load(schema, data)


def _json(reply: Reply, op: Operation) -> Response:
    response = jsonify(reply.body)
    response.status_code = reply.status
    for name, value in reply.headers.items():
        response.headers[name] = value
    if op.etag and reply.status < 300:
        response.headers["ETag"] = etag_of(reply.body)
    return response


def _run(op: Operation, view: Callable[..., Any], kwargs: dict[str, Any]) -> Response:
    if op.method == "GET" and not op.writes:
        read_only_db()  # before anything opens the usual session
    use = _authenticate()
    use.require(op.scope, op.permission)
    g.api_token = use
    for name, value in kwargs.items():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound(f"No such {name.removesuffix('_id')}.")
    if op.query is not None:
        kwargs["query"] = load(op.query, request.args.to_dict())
    if op.body is not None:
        kwargs["body"] = _body(op.body)
    key = request.headers.get(idempotency.HEADER) if op.idempotent else None
    if key is not None:
        fingerprint = idempotency.request_hash(request.method, request.path, request.get_data())
        replay = _claim(use, key, fingerprint)
        if replay is not None:
            return _json(_replayed(replay), op)
    reply = view(**kwargs)
    if isinstance(reply, Response):  # a download (CSV), not JSON
        return reply
    if request.method != "GET":
        # Every use of a scope that changes or sends is in the audit log, with its token.
        use.audit(db(), f"api.{op.name}", request.path, ip(), method=request.method)
        if key is not None:
            idempotency.finish(db(), use.token.id, key, reply.status, reply.body)
        try:
            db().commit()
        except IntegrityError:
            # A twin with the same key committed first: answer as it was answered.
            db().rollback()
            if key is None:
                raise
            replay = _claim(use, key, fingerprint)
            if replay is None:
                raise
            return _json(_replayed(replay), op)
        for work in reply.after_commit:
            work()
    return _json(reply, op)


def _replayed(replay: idempotency.Replay) -> Reply:
    return Reply(replay.body, replay.status, headers={"Idempotent-Replay": "true"})


def _claim(use: apitokens.TokenUse, key: str, fingerprint: str) -> idempotency.Replay | None:
    try:
        return idempotency.begin(db(), use.token.id, key, fingerprint)
    except IntegrityError:
        db().rollback()
        return idempotency.begin(db(), use.token.id, key, fingerprint)


def operation(rule: str, method: str, *, scope: str, summary: str, tag: str, **options: Any):
    """Register a view under /api/v1 with what the OpenAPI document says about it."""

    def decorate(view: Callable[..., Reply]) -> Callable[..., Response]:
        op = Operation(view.__name__, rule, method, scope, summary, tag, **options)
        OPERATIONS.append(op)

        @wraps(view)
        def wrapped(**kwargs: Any) -> Response:
            return _run(op, view, kwargs)

        bp.add_url_rule(rule, view.__name__, wrapped, methods=[method])
        return wrapped

    return decorate


def ip() -> str | None:
    """The caller's address, for the audit log."""
    return client_ip()
