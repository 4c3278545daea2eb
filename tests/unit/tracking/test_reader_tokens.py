"""Reader tokens: bound to one delivery and one petition, expiring, tamper-evident."""

from __future__ import annotations

import pytest

from clarion.config import reset_settings
from clarion.errors import InvalidToken
from clarion.tracking import readers


@pytest.fixture(autouse=True)
def secret(monkeypatch, tmp_path):
    monkeypatch.setenv("CLARION_SECRET_KEY", "unit-test-secret-0123456789abcdef0123456789")
    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path))
    reset_settings()
    yield
    reset_settings()


def test_a_reader_token_names_its_delivery_on_its_petition():
    token = readers.reader_token("d" * 26, "free-them")
    assert readers.read_reader_token(token, "free-them").delivery_token == "d" * 26
    with pytest.raises(InvalidToken):
        readers.read_reader_token(token, "another-petition")


def test_a_reader_token_expires(monkeypatch):
    import itsdangerous.timed as timed

    token = readers.reader_token("d" * 26, "free-them")
    real = timed.time.time
    monkeypatch.setattr(timed.time, "time", lambda: real() + readers.READER_TTL_SECONDS + 1)
    with pytest.raises(InvalidToken, match="expired"):
        readers.read_reader_token(token, "free-them")


def test_a_reader_token_cannot_be_moved_to_another_reader():
    token = readers.reader_token("d" * 26, "free-them")
    with pytest.raises(InvalidToken):
        readers.read_reader_token(token.replace("d" * 26, "e" * 26), "free-them")
