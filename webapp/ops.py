"""Operations endpoints: /healthz (the process answers), /readyz (it can work), /metrics."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, jsonify, request

from clarion.integrations import metrics, readiness

bp = Blueprint("ops", __name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/healthz")
def healthz():
    """The process is up; checks nothing else, so a busy database never restarts the web."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Database, Redis and broker reachable and the schema current; 503 naming what failed."""
    result = readiness.check()
    body = {"status": "ready" if result.ready else "not ready", "checks": result.checks}
    response = jsonify(body)
    response.status_code = 200 if result.ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _allowed() -> bool:
    token = current_app.config["CLARION"].metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics_page():
    """Prometheus' text format; for the CLARION_METRICS_TOKEN bearer, or loopback without one."""
    if not _allowed():
        return Response("Not allowed.\n", 403, mimetype="text/plain")
    return Response(metrics.collect(), mimetype=PROMETHEUS_TEXT)
