"""Fixtures: real Redis, PostgreSQL and SQLite, an SMTP sink, Celery workers, the Flask app."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.services import PostgresServer, RedisServer, free_port, wait_for_port
from tests.worker_probe import wait_until_quiet

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
SECRET = "test-secret-key-that-is-long-enough-0123456789"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=["sqlite", "postgresql"],
        help="Run database tests on this backend only (default: both).",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend") or ["sqlite", "postgresql"]
        metafunc.parametrize("backend_name", chosen, scope="session")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.cleanup()


@dataclass
class Sink:
    """The loopback SMTP server the tests send to (the mail catcher itself)."""

    directory: Path
    port: int
    controller: object = None

    def messages(self):
        from clarion.delivery.mailcatcher import list_messages

        return list_messages(self.directory, limit=100_000)

    def wait_for(self, count: int, timeout: float = 30.0):
        """Wait until at least `count` messages arrived; return them newest first."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def clear(self) -> None:
        from clarion.delivery.mailcatcher import clear

        clear(self.directory)


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    from clarion.delivery.mailcatcher import start_catcher

    directory = tmp_path_factory.mktemp("sink") / "outbox"
    port = free_port()
    controller = start_catcher(directory, port=port)
    yield Sink(directory, port, controller)
    controller.stop()


@dataclass
class Backend:
    """One database backend with the environment every process of a test run shares."""

    name: str
    url: str
    instance_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    web_port: int = 0


@pytest.fixture(scope="session")
def backend(
    backend_name: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    smtp_sink: Sink,
) -> Iterator[Backend]:
    from clarion import schema

    instance = tmp_path_factory.mktemp(f"instance-{backend_name}")
    if backend_name == "postgresql":
        url = request.getfixturevalue("pg_server").create_database("clarion_test")
    else:
        url = f"sqlite:///{instance / 'clarion.db'}"
    web_port = free_port()
    env = {
        "CLARION_ENV": "test",
        "CLARION_DATABASE_URL": url,
        "CLARION_REDIS_URL": redis_server.url,
        "CLARION_SMTP_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "CLARION_CATCHER_PORT": str(smtp_sink.port),
        "CLARION_BASE_URL": f"http://127.0.0.1:{web_port}",
        "CLARION_SECRET_KEY": SECRET,
        "CLARION_INSTANCE_DIR": str(instance),
        "CLARION_FROM": "Free Them All <alerts@clarion.test>",
        "CLARION_BOUNCE_DOMAIN": "bounces.clarion.test",
        "CLARION_SITE_NAME": "Free Them All",
        "CLARION_OUTBOX_DIR": str(smtp_sink.directory),
    }
    schema.upgrade(url)
    yield Backend(backend_name, url, instance, env, web_port)


def _apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key in list(os.environ):
        if key.startswith("CLARION_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _truncate(url: str) -> None:
    from sqlalchemy.exc import OperationalError

    from clarion.db import Base, get_engine

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    engine = get_engine(url)
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        conn.execute(text(f"DELETE FROM {table}"))
            return
        except OperationalError as exc:
            # The session's worker may still be finishing a task the previous test queued
            # (a confirmation mail): PostgreSQL then picks TRUNCATE as a deadlock victim.
            if attempt == 4 or "deadlock" not in str(exc).lower():
                raise


def _clear_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    # Leave Celery's own bindings alone; drop our keys, rate-limit windows and queued tasks.
    for pattern in ("clarion:*", "LIMITS*", "default", "hooks", "bulk", "unacked*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture
def settings(
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
    smtp_sink: Sink,
    request: pytest.FixtureRequest,
):
    """Clarion configured for this backend, with an empty database, Redis and outbox."""
    from clarion.config import get_settings, reset_settings
    from clarion.tracking.linkmap import forget_cached_links

    # The session's workers, left running by earlier modules, take only the tasks of tests
    # that ask for their backend's: otherwise one wrote between a test session's read and its
    # write, and SQLite refused the write at once ("database is locked", three times in CI).
    # Both backends' workers consume the one Redis: the other backend's is paused too.
    wanted = _session_workers.get(backend.name) if "worker" in request.fixturenames else None
    for running in list(_session_workers.values()):
        if running is not wanted:
            take_tasks(running, False)

    _apply_env(monkeypatch, backend.env)
    reset_settings()
    forget_cached_links()  # ids start again in each test's emptied database
    redis_url = backend.env["CLARION_REDIS_URL"]
    _clear_redis(redis_url)  # first: no queued task of the last test starts while we wait
    wait_until_quiet(redis_url)  # then: the last test's running tasks have written
    _truncate(backend.url)
    smtp_sink.clear()
    if wanted is not None:
        take_tasks(wanted, True)  # after emptying: no task of an earlier test is left
    yield get_settings()
    reset_settings()


@pytest.fixture
def session(settings):
    """A database session on the test backend."""
    from clarion.db import session_factory

    s = session_factory(settings.database_url, reader=True)()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def app(settings):
    from webapp import create_app

    application = create_app(settings, TESTING=True)
    yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_app(settings):
    """The app with CSRF switched off, for tests about something else than CSRF."""
    from webapp import create_app

    return create_app(settings, TESTING=True, WTF_CSRF_ENABLED=False)


@dataclass
class Worker:
    """A real Celery worker process."""

    proc: subprocess.Popen
    log: Path
    node: str = ""
    queues: tuple[str, ...] = ()
    redis_url: str = ""
    taking: bool = True  # consuming its queues (the session's worker pauses between uses)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        # The worker runs in its own process group: kill the pool children too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(30)

    def stop(self) -> None:
        if not self.alive():
            return
        try:
            self.kill(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            # A warm shutdown waits for the tasks running; one still retrying a server the test
            # has stopped would keep it for minutes. The test is over: as systemd would, kill.
            self.kill(signal.SIGKILL)


def start_worker(
    backend: Backend,
    log: Path,
    queues: str = "default,hooks,bulk",
    concurrency: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Worker:
    """Start `celery -A tasks worker` against the backend and wait until it consumes."""
    env = {**os.environ, **backend.env, **(extra_env or {})}
    env["PYTHONPATH"] = str(ROOT)
    from celery.utils.nodenames import host_format

    node = host_format(f"w{free_port()}@%h")
    handle = log.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--include",
            "tests.worker_probe",
            "-n",
            node,
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return Worker(proc, log, node, tuple(queues.split(",")), env["CLARION_REDIS_URL"])


def take_tasks(worker: Worker, wanted: bool) -> None:
    """Make the worker consume its queues, or stop taking new tasks from them (what it has
    already started still runs: `wait_until_quiet` waits for it)."""
    if worker.taking == wanted or not worker.alive():
        return
    from celery import Celery

    control = Celery("clarion-test-control", broker=worker.redis_url)
    try:
        for queue in worker.queues:
            if wanted:
                replies = control.control.add_consumer(
                    queue, destination=[worker.node], reply=True, timeout=10
                )
            else:
                replies = control.control.cancel_consumer(
                    queue, destination=[worker.node], reply=True, timeout=10
                )
            if not replies:
                raise RuntimeError(f"worker {worker.node} did not answer for queue {queue}")
    finally:
        control.close()
    worker.taking = wanted


# The session's worker of each backend, once a test has started it: between the tests that ask
# for it, it takes no tasks (see `settings`).
_session_workers: dict[str, Worker] = {}


@pytest.fixture(scope="session")
def worker(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker per backend for the whole run."""
    w = start_worker(backend, tmp_path_factory.mktemp("worker") / "worker.log")
    _session_workers[backend.name] = w
    yield w
    _session_workers.pop(backend.name, None)
    w.stop()


@pytest.fixture
def live_server(app, backend: Backend) -> Iterator[str]:
    """The app served over HTTP on the port CLARION_BASE_URL names."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", backend.web_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    wait_for_port(backend.web_port)
    yield f"http://127.0.0.1:{backend.web_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is required for browser tests: apt-get install chromium")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    p = context.new_page()
    yield p
    context.close()


@pytest.fixture
def published():
    """Tasks the domain publishes, kept here instead of going to a broker:
    the session's worker does not race the test for the SQLite write lock."""
    from clarion import jobqueue

    queued: list[tuple[str, tuple, float | None]] = []
    previous = jobqueue.set_backend(
        lambda name, args, countdown: queued.append((name, args, countdown))
    )
    yield queued
    jobqueue.set_backend(previous)
