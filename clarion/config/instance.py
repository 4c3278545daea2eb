"""The instance folder is private: 0700, its files 0600, and a check that says when it is not.

It holds the SQLite database (editors' hashes, readers' addresses), the secret key, rejected
rows of imports and exports. Any other account on the machine must not read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Files made by Clarion itself that must be private even when created before this check.
KNOWN_FILES = ("clarion.db", "clarion.db-wal", "clarion.db-shm", "secret_key")


def make_private(instance_dir: Path) -> None:
    """Create files owner-only from now on (umask 077) and tighten the folder and known files.

    Called once at start by the web app, the worker and the `clarion` command.
    """
    os.umask(0o077)
    instance_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _tighten(instance_dir, PRIVATE_DIR)
    for name in KNOWN_FILES:
        _tighten(instance_dir / name, PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    # Only what this account owns; a shared folder given by the operator is theirs to set.
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~mode:
        path.chmod(stat.S_IMODE(info.st_mode) & mode)


def exposed(instance_dir: Path, limit: int = 20) -> list[str]:
    """Paths under the instance folder that other accounts can read or enter (at most `limit`)."""
    found: list[str] = []
    if not instance_dir.exists():
        return found
    for path in [instance_dir, *sorted(instance_dir.rglob("*"))]:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue  # removed while we looked
        if not path.is_symlink() and mode & 0o077:
            found.append(f"{path} ({mode:o})")
            if len(found) >= limit:
                break
    return found
