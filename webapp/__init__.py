"""HTTP adapter: the Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from clarion.config import PROJECT_ROOT, Settings, get_settings
from clarion.config.instance import make_private


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that nesting deep enough to exhaust the stack is bad input.

    json.loads raises RecursionError (not ValueError) for `[[[[…]]]]` 100 000 deep, which
    request.get_json() would let through as a 500.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("The JSON is nested too deeply.") from None


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the web application for the given (or configured) settings."""
    settings = settings or get_settings()
    make_private(settings.instance_dir)
    from webapp import accesslog

    app = accesslog.App(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates" / "web"),
        static_folder="static",
    )
    secure = settings.base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        CLARION=settings,
        SESSION_COOKIE_NAME="clarion_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=secure,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.config.update(overrides)
    app.json = SafeJSONProvider(app)
    from webapp.tracked_links import TrackedLinks

    app.wsgi_app = TrackedLinks(app.wsgi_app, settings.base_url)  # type: ignore[method-assign]
    if settings.proxy_count:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count
        )  # type: ignore[method-assign]

    from webapp import errors, extensions, i18n, identity, ops, security
    from webapp.admin import bp as admin_bp
    from webapp.api import bp as api_bp
    from webapp.api import docs
    from webapp.api.v1 import bp as v1_bp
    from webapp.public import bp as public_bp

    accesslog.init_app(app)
    extensions.init_app(app)
    i18n.init_app(app)
    identity.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    app.register_blueprint(public_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    extensions.csrf.exempt(api_bp)
    extensions.csrf.exempt(v1_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(ops.bp)
    return app
