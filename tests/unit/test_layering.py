"""Imports flow one way: clarion/ never imports Flask or Celery (checked by import-linter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def run_linter(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_project_keeps_its_import_contracts():
    result = run_linter(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_flask_import_in_the_domain_breaks_the_contract(tmp_path):
    for name in ("clarion", "webapp", "tasks"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    victim = tmp_path / "clarion" / "errors.py"
    victim.write_text(victim.read_text() + "\nimport flask  # noqa\n")
    result = run_linter(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "clarion.errors -> flask" in result.stdout
