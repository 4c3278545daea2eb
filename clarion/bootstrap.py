"""First run and local operation: schema, first owner, demo data, and every process at once."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select

from clarion import schema
from clarion.config import PROJECT_ROOT, Settings, get_settings
from clarion.db import session_scope
from clarion.models import Alert, AlertKind, Editor, MailingList, Role

DEMO_BODY = """\
Thank you for standing with the people we write about.

This is a **draft** made by the demo set-up: edit it, preview it, and send a test to the
local mail catcher to see what subscribers receive.
"""


@dataclass
class SetupReport:
    """What `clarion setup` did, line by line, for the terminal."""

    lines: list[str] = field(default_factory=list)


def setup(with_demo: bool = True, settings: Settings | None = None) -> SetupReport:
    """Migrate, create the first owner (password printed once), and a demo on first run."""
    settings = settings or get_settings()
    report = SetupReport()
    schema.upgrade(settings.database_url)
    report.lines.append(f"Database ready: {settings.database_url.split('@')[-1]}")
    with session_scope(settings.database_url) as session:
        if not session.scalar(select(func.count()).select_from(Editor)):
            report.lines.extend(_first_owner(session, settings))
        if with_demo and not session.scalar(select(func.count()).select_from(MailingList)):
            _demo(session)
            report.lines.append("Demo created: lists 'Urgent actions' and 'Newsletter', one draft.")
    return report


def _first_owner(session, settings: Settings) -> list[str]:
    from clarion.editors import create_editor

    email = os.environ.get("CLARION_OWNER_EMAIL", "owner@example.org")
    editor, password = create_editor(session, email, Role.OWNER)
    return [
        "",
        "  First owner account (the password is shown only this once):",
        f"    log in at  {settings.base_url}/admin/login",
        f"    email      {editor.email}",
        f"    password   {password}",
        "",
    ]


def _demo(session) -> None:
    urgent = MailingList(
        slug="urgent-actions",
        name="Urgent actions",
        description="Petitions and days of action, when they matter",
    )
    news = MailingList(slug="newsletter", name="Newsletter", description="Monthly news")
    session.add_all([urgent, news])
    session.flush()
    session.add(
        Alert(
            kind=AlertKind.NEWSLETTER,
            name="Welcome to Clarion (demo)",
            subject="News from the campaign",
            fields={"body_md": DEMO_BODY},
            audience={"lists": [news.id]},
            sender_list_id=news.id,
        )
    )


def procfile_entries(path: Path = PROJECT_ROOT / "Procfile") -> dict[str, str]:
    """The processes named in the Procfile."""
    entries = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def _local_redis_command(settings: Settings) -> str | None:
    """A redis-server command when the configured Redis is local and not yet running."""
    import redis

    parts = urlsplit(settings.redis_url)
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        return None
    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1).ping()
        return None
    except redis.ConnectionError:
        pass
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    data = settings.instance_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    # Append-only persistence: queued tasks survive a restart of the embedded setup.
    return (
        f"{exe} --bind 127.0.0.1 --port {parts.port or 6379} --dir {data} "
        "--appendonly yes --save ''"
    )


def run_all(run_setup: bool = True, only: tuple[str, ...] = ()) -> int:
    """Run every Procfile process (and a local Redis if needed) until Ctrl-C."""
    from honcho.manager import Manager

    settings = get_settings()
    if run_setup:
        for line in setup(settings=settings).lines:
            print(line, flush=True)
    env = dict(os.environ)
    # Procfile commands (gunicorn, celery, clarion) come from this interpreter's environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    manager = Manager()
    redis_cmd = _local_redis_command(settings)
    if redis_cmd:
        manager.add_process("redis", redis_cmd, env=env, cwd=str(PROJECT_ROOT))
    for name, command in procfile_entries().items():
        if only and name not in only:
            continue
        if name == "bounces" and not only:
            continue  # the bounce receiver needs a public MX; not part of the embedded setup
        manager.add_process(name, command, env=env, cwd=str(PROJECT_ROOT))
    print(
        f"Clarion is starting: open {settings.base_url}/admin  (Ctrl-C stops everything)",
        flush=True,
    )
    manager.loop()
    return manager.returncode or 0
