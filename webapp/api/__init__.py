"""Machine-facing endpoints: provider webhooks and the /api/v1 REST API (no session, no CSRF;
each request proves itself)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

# What each machine-facing route takes as proof instead of a session and a CSRF token;
# tests/integration/test_roles_and_csrf.py walks the URL map and sends each without it.
ROUTE_PROOF = {
    "api.webhook": "the provider's signature, SNS certificate or Basic credentials",
}

from webapp.api import webhooks  # noqa: E402, F401
from webapp.api.v1 import OPERATIONS  # noqa: E402
from webapp.api.v1 import bp as v1  # noqa: E402

bp.register_blueprint(v1, url_prefix="/api/v1")
ROUTE_PROOF.update(
    {f"api.v1.{op.name}": f"an API token with the {op.scope} scope" for op in OPERATIONS}
)
