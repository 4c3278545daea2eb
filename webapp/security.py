"""Security headers: no third-party request from any page, no token leaked by Referer."""

from __future__ import annotations

from flask import Flask, Response, request

# Everything is served by Clarion itself; inline scripts and styles are not allowed.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The Outbox shows caught mail in a sandboxed frame: its HTML may carry inline styles.
OUTBOX_FRAME_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def standard_headers(secure: bool, csp: str = CSP) -> list[tuple[str, str]]:
    """The headers every response carries (views may set their own CSP first)."""
    headers = [("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff")]
    # Pages that may be framed (the embeddable counter) say so in their own frame-ancestors.
    if "frame-ancestors 'none'" in csp:
        headers.append(("X-Frame-Options", "DENY"))
    # Tokens live in our URLs (unsubscribe, preferences): never send them onwards.
    headers.append(("Referrer-Policy", "no-referrer"))
    headers.append(("Permissions-Policy", "interest-cohort=(), browsing-topics=()"))
    if secure:
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return headers


def _headers(response: Response) -> Response:
    csp = response.headers.get("Content-Security-Policy", CSP)
    for name, value in standard_headers(request.is_secure, csp):
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response."""
    app.after_request(_headers)
