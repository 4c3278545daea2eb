"""`clarion up`, the first README command: starts everything, works, stops on Ctrl-C."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.services import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _wait_for_text(path: Path, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} never appeared:\n{path.read_text(errors='replace')[-4000:]}")


def _confirm_leaves_no_token_in_the_log(mail: Path, web: int, log: Path) -> None:
    """The reader confirms from the mail; the web process's request log names the route only,
    without the token, the query, the browser or the page the reader came from."""
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    token = re.search(r"/confirm/([^\s/?]+)", text).group(1)
    request = urllib.request.Request(
        f"http://127.0.0.1:{web}/confirm/{token}?from=mail",
        headers={"User-Agent": "ReaderBrowser/1.0", "Referer": "https://mail.example/inbox"},
    )
    urllib.request.urlopen(request, timeout=10).read()
    logged = _wait_for_text(log, r"GET /confirm/<token> HTTP/1\.1")
    assert token not in logged
    for detail in ("from=mail", "ReaderBrowser", "mail.example"):
        assert detail not in logged


def test_up_runs_the_whole_system_and_ctrl_c_stops_it(tmp_path):
    web, redis_port, catcher = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.pop("XDG_RUNTIME_DIR", None)
    instance = tmp_path / "instance"
    env.update(
        HOME=str(tmp_path / "home"),
        CLARION_INSTANCE_DIR=str(instance),
        CLARION_BIND=f"127.0.0.1:{web}",
        CLARION_BASE_URL=f"http://127.0.0.1:{web}",
        CLARION_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CLARION_CATCHER_PORT=str(catcher),
        CLARION_WEB_WORKERS="1",
        CLARION_WORKER_CONCURRENCY="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clarion.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        text = _wait_for_text(log, r"celery@\S+ ready\.")
        assert "password" in text and "owner@example.org" in text
        wait_for_port(web, timeout=30)
        wait_for_port(catcher, timeout=30)
        form = _get(f"http://127.0.0.1:{web}/subscribe")
        list_id = re.search(r'name="lists" value="(\d+)"', form).group(1)
        body = urllib.parse.urlencode({"email": "up@example.org", "lists": list_id}).encode()
        urllib.request.urlopen(f"http://127.0.0.1:{web}/subscribe", body, timeout=10)
        outbox = tmp_path / "instance" / "outbox" / "new"
        deadline = time.monotonic() + 30
        while not (outbox.exists() and any(outbox.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.2)
        [mail] = list(outbox.iterdir())
        assert b"up@example.org" in mail.read_bytes()
        _confirm_leaves_no_token_in_the_log(mail, web, log)
        # gunicorn's control socket is this instance's own, not the one every gunicorn shares.
        assert (instance / "gunicorn.ctl").is_socket()
        assert not (tmp_path / "home" / ".gunicorn").exists()
        # The instance folder and what is in it are private to this account.
        assert stat.S_IMODE(instance.stat().st_mode) == 0o700
        assert stat.S_IMODE((instance / "clarion.db").stat().st_mode) == 0o600
    finally:
        proc.send_signal(signal.SIGINT)  # what one Ctrl-C in the terminal sends
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    # Nothing is left listening.
    for port in (web, redis_port, catcher):
        with pytest.raises(TimeoutError):
            wait_for_port(port, timeout=1)
