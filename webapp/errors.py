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
from clarion.i18n import N_
from clarion.i18n import gettext as _
from webapp.api.problems import for_api, problem

# Public error pages in the reader's language: (title, what to do) per status.
HTTP_PAGES = {
    400: (
        N_("Bad request"),
        N_("The request could not be understood. Please go back and try again."),
    ),
    403: (N_("Not allowed"), N_("You may not open this page.")),
    404: (N_("Not found"), N_("There is nothing at this address. Please check the link.")),
    405: (N_("Not possible"), N_("This page cannot be used this way.")),
    410: (N_("Gone"), N_("This page is no longer here.")),
    413: (N_("Too large"), N_("What you sent is too large.")),
    429: (
        N_("Too many attempts"),
        N_("Too many requests from your network. Please try again in a while."),
    ),
    500: (
        N_("Something went wrong"),
        N_("Something went wrong on our side. Please try again in a few minutes."),
    ),
}


def _own_description(exc: HTTPException) -> bool:
    # A view that explained the problem itself (e.g. malformed JSON) keeps its own words.
    return bool(exc.description) and exc.description != type(exc).description


def wants_json() -> bool:
    """True when the client asked for JSON rather than a page."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" or request.is_json


def error_response(status: int, title: str, message: str, headers: dict | None = None):
    """A page or a JSON body with the same message (problem+json on the REST API)."""
    if for_api():
        return problem(status, title, message, headers=headers)
    if wants_json():
        return jsonify({"error": title, "message": message}), status
    return render_template("error.html", title=title, message=message), status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(InvalidToken)
    def _invalid_token(exc: InvalidToken):
        return error_response(400, _("This link does not work"), str(exc))

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        return error_response(404, _("Not found"), str(exc))

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden):
        return error_response(403, _("Not allowed"), str(exc))

    @app.errorhandler(InvalidTransition)
    def _invalid_transition(exc: InvalidTransition):
        return error_response(409, _("Not possible now"), str(exc))

    @app.errorhandler(RateLimited)
    def _rate_limited(exc: RateLimited):
        wait = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(wait)} if wait else None
        return error_response(429, _("Too many attempts"), str(exc), headers)

    @app.errorhandler(Suppressed)
    def _suppressed(exc: Suppressed):
        return error_response(409, _("Cannot subscribe"), str(exc))

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError):
        if for_api():
            return problem(422, "Please check", "Some fields need fixing.", exc.errors)
        if wants_json():
            return jsonify({"error": "invalid", "fields": exc.errors}), 422
        return render_template("error.html", title=_("Please check"), message=str(exc)), 422

    @app.errorhandler(WebhookRefused)
    def _webhook_refused(exc: WebhookRefused):
        # Machines read this: always JSON, never a page.
        return jsonify({"error": "refused", "message": str(exc)}), exc.status

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(
            400,
            _("The form expired"),
            _("Please go back, reload the page and submit the form again."),
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = exc.code or 500
        if for_api():
            headers = dict(exc.get_headers())
            headers.pop("Content-Type", None)
            detail = exc.description if _own_description(exc) else ""
            return problem(code, exc.name, detail or exc.name, headers=headers)
        if code in HTTP_PAGES and not _own_description(exc):
            title, message = HTTP_PAGES[code]
            return error_response(code, _(title), _(message))
        return error_response(code, exc.name, exc.description or "")
