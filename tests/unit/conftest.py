"""Unit-test fixtures: settings from a clean environment, no services."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from clarion.config import reset_settings

BASE = "https://news.example.org"


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No CLARION_* variable set: every setting at its default until the test sets it."""
    for key in list(os.environ):
        if key.startswith("CLARION_"):
            monkeypatch.delenv(key)
    reset_settings()
    yield monkeypatch
    reset_settings()


@pytest.fixture
def env(bare_env: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    """The least settings need: an instance directory, a secret, the site and bounce domain."""
    bare_env.setenv("CLARION_INSTANCE_DIR", str(tmp_path / "instance"))
    bare_env.setenv("CLARION_SECRET_KEY", "unit-test-secret-that-is-long-enough-0123")
    bare_env.setenv("CLARION_BASE_URL", BASE)
    bare_env.setenv("CLARION_BOUNCE_DOMAIN", "b.example.org")
    reset_settings()
    return bare_env
