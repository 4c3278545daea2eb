"""The API's description for anyone: /api/v1/openapi.json and a docs page served from here
(no CDN, no script: a list of the operations, their scopes and their fields)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from webapp.api.v1 import OPERATIONS
from webapp.api.v1.spec import SCOPES_HELP, api_path, document

bp = Blueprint("api_docs", __name__)


@bp.get("/api/v1/openapi.json")
def openapi():
    """The OpenAPI 3.1 document."""
    response = jsonify(document())
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/api/v1/docs")
def docs():
    """A page listing every operation, what it needs and where to read its fields."""
    ops = sorted(OPERATIONS, key=lambda op: (op.tag, api_path(op.rule), op.method))
    return render_template(
        "api_docs.html", operations=ops, path=api_path, scopes=SCOPES_HELP, spec=document()
    )
