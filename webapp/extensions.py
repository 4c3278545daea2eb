"""Flask extensions: CSRF protection, login sessions, the database session per request."""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from clarion.db import session_factory
from clarion.models import Editor

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to continue."  # translated in webapp/admin/auth.py
login_manager.session_protection = "strong"


def db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        # Page views read; only requests that change something take SQLite's write lock.
        g.db = session_factory(reader=request.method in {"GET", "HEAD", "OPTIONS"})()
    return g.db


def read_only_db() -> Session:
    """The request's database session, opened as one that never writes (API reads): on
    PostgreSQL it spares the request a BEGIN and a ROLLBACK."""
    if "db" not in g:
        g.db = session_factory(read_only=True)()
    return g.db


def _close_db(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


class EditorUser:
    """Flask-Login wrapper; the id carries the session version so old sessions die."""

    def __init__(self, editor: Editor) -> None:
        self.editor = editor
        self.is_authenticated = True
        self.is_active = editor.is_active
        self.is_anonymous = False

    def get_id(self) -> str:
        return f"{self.editor.id}:{self.editor.session_version}"


@login_manager.user_loader
def _load_user(user_id: str) -> EditorUser | None:
    editor_id, _, version = user_id.partition(":")
    if not (
        editor_id.isascii() and editor_id.isdigit() and version.isascii() and version.isdigit()
    ):
        return None
    editor = db().get(Editor, int(editor_id))
    if editor is None or not editor.is_active or editor.session_version != int(version):
        return None
    return EditorUser(editor)


def init_app(app: Flask) -> None:
    """Attach the extensions to the app."""
    csrf.init_app(app)
    login_manager.init_app(app)
    app.teardown_appcontext(_close_db)
