"""The instance folder is private: 0700 and 0600 from the first start, and checked on demand."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner

from clarion.cli import main
from clarion.config import reset_settings
from clarion.config.instance import make_private


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """A fresh instance folder on SQLite; the process umask is restored afterwards."""
    previous = os.umask(0o022)
    folder = tmp_path / "instance"
    for key in list(os.environ):
        if key.startswith("CLARION_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(folder))
    reset_settings()
    yield folder
    reset_settings()
    os.umask(previous)


def test_first_start_makes_the_folder_and_database_private(instance):
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert mode(instance) == 0o700
    assert mode(instance / "clarion.db") == 0o600
    assert mode(instance / "secret_key") == 0o600
    later = instance / "imports" / "x-rejected.csv"
    later.parent.mkdir()
    later.write_text("row")  # what a worker writes later is private by the umask
    assert mode(later) == 0o600 and mode(later.parent) == 0o700


def test_an_old_loose_instance_is_tightened_at_start(instance):
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    for name in ("clarion.db", "secret_key"):
        (instance / name).write_text("x" * 48)
        (instance / name).chmod(0o644)
    make_private(instance)
    assert mode(instance) == 0o700
    assert mode(instance / "clarion.db") == mode(instance / "secret_key") == 0o600


def test_check_config_warns_about_files_others_can_read(instance):
    instance.mkdir(mode=0o700)
    exported = instance / "exports"
    exported.mkdir(mode=0o700)
    (exported / "people.csv").write_text("a@example.org")
    (exported / "people.csv").chmod(0o644)
    result = CliRunner().invoke(main, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "people.csv (644)" in result.output
    assert f"chmod -R go-rwx {instance}" in result.output
    (exported / "people.csv").chmod(0o600)
    quiet = CliRunner().invoke(main, ["check-config"])
    assert "warning" not in quiet.output
