"""Domain errors to clear pages and JSON: what went wrong and what to do."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from clarion.errors import (
    Forbidden,
    InvalidToken,
    InvalidTransition,
    NotFound,
    RateLimited,
    Suppressed,
    ValidationError,
    WebhookRefused,
)


def wants_json() -> bool:
    """True when the client asked for JSON rather than a page."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" or request.is_json


def error_response(status: int, title: str, message: str):
    """A page or a JSON body with the same message."""
    if wants_json():
        return jsonify({"error": title, "message": message}), status
    return render_template("error.html", title=title, message=message), status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(InvalidToken)
    def _invalid_token(exc: InvalidToken):
        return error_response(400, "This link does not work", str(exc))

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        return error_response(404, "Not found", str(exc))

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden):
        return error_response(403, "Not allowed", str(exc))

    @app.errorhandler(InvalidTransition)
    def _invalid_transition(exc: InvalidTransition):
        return error_response(409, "Not possible now", str(exc))

    @app.errorhandler(RateLimited)
    def _rate_limited(exc: RateLimited):
        return error_response(429, "Too many attempts", str(exc))

    @app.errorhandler(Suppressed)
    def _suppressed(exc: Suppressed):
        return error_response(409, "Cannot subscribe", str(exc))

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError):
        if wants_json():
            return jsonify({"error": "invalid", "fields": exc.errors}), 422
        return render_template("error.html", title="Please check", message=str(exc)), 422

    @app.errorhandler(WebhookRefused)
    def _webhook_refused(exc: WebhookRefused):
        # Machines read this: always JSON, never a page.
        return jsonify({"error": "refused", "message": str(exc)}), exc.status

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(
            400, "The form expired", "Please go back, reload the page and submit the form again."
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return error_response(exc.code or 500, exc.name, exc.description or "")
