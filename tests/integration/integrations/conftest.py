"""API tokens made the way editors make them, a client that sends them, and webhooks' loopback."""

from __future__ import annotations

import pytest

from clarion.config import reset_settings


@pytest.fixture
def make_token(session, make_editor):
    """A token for an editor of `role` with `scopes`; returns the secret."""
    from clarion.integrations import apitokens
    from clarion.models import Editor

    def make(role: str = "owner", scopes=("read",), email: str | None = None, **kw) -> str:
        address = email or f"{role}@example.org"
        editor = session.query(Editor).filter_by(email=address).one_or_none()
        if editor is None:
            editor, _ = make_editor(role, address)
        _, secret = apitokens.create_token(session, editor, list(scopes), **kw)
        session.commit()
        return secret

    return make


def bearer(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


@pytest.fixture
def loopback(settings, monkeypatch):
    """Clarion allowed to reach loopback (private: refused otherwise), as the feed tests do."""
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")
    monkeypatch.setenv("CLARION_FETCH_TIMEOUT", "5")
    reset_settings()
