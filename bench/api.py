"""Benchmark of /api/v1: wrk with 8 connections creating subscribers and reading keyset pages.

    .venv/bin/python -m bench.api [--backend postgresql|sqlite] [--duration 20] [--write]

Sets up its own Redis and database (PostgreSQL by default) in temporary directories, 20,000
readers on one public list and an editor's token with the read and write scopes. gunicorn
serves Clarion as the Procfile runs it; wrk (2 threads) alternates POST /api/v1/subscribers
(a new address each time: double opt-in, a consent record, the confirmation mail queued) and
GET /api/v1/subscribers?after=<random id> (a page of 50 with lists, tags and suppression).
Target (issue 17): >= 500 requests/s with p99 < 50 ms on PostgreSQL. `--write` puts the
figures into the "## API" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._setup import write_readme_section  # noqa: E402
from bench.clicks import GUNICORN, WrkResult, environment, start, stop, wrk  # noqa: E402
from tests.services import PostgresServer, RedisServer, free_port, wait_for_port  # noqa: E402

READERS = 20_000
TARGET_RPS = 500
TARGET_P99_MS = 50.0


def prepare(env: dict) -> tuple[str, int]:
    """Schema, a list with its readers, an editor and a token; returns (token, list id)."""
    os.environ.update(env)
    from sqlalchemy import select, text

    from clarion import schema
    from clarion.config import reset_settings
    from clarion.db import session_scope
    from clarion.editors import create_editor
    from clarion.integrations import apitokens
    from clarion.models import MailingList, Role, Subscriber, Subscription, SubscriptionStatus

    reset_settings()
    schema.upgrade(env["CLARION_DATABASE_URL"])
    with session_scope() as session:
        alerts = MailingList(slug="alerts", name="Alerts", is_public=True)
        session.add(alerts)
        session.add_all(
            Subscriber(email=f"r{i}@example.org", name=f"R {i}") for i in range(READERS)
        )
        session.flush()
        ids = session.scalars(select(Subscriber.id)).all()
        session.add_all(
            Subscription(subscriber_id=i, list_id=alerts.id, status=SubscriptionStatus.SUBSCRIBED)
            for i in ids
        )
        editor, _ = create_editor(session, "bench@example.org", Role.EDITOR)
        _, token = apitokens.create_token(session, editor, ["read", "write"])
        list_id = alerts.id
    # A live database has statistics (autovacuum keeps them): without, PostgreSQL scans
    # subscriptions whole for each page's lists (12 ms instead of 0.3 ms).
    with session_scope() as session:
        session.execute(text("ANALYZE"))
    return token, list_id


def in_process(token: str, list_id: int, count: int) -> dict[str, dict[str, float]]:
    """Each kind of request `count` times through the Flask test client, no server: CPU and
    wall time, SQL statements and Redis round trips per request."""
    import random

    import redis.connection
    from sqlalchemy import event

    from clarion.config import get_settings
    from clarion.db import get_engine
    from webapp import create_app

    client = create_app().test_client()
    auth = {"Authorization": f"Bearer {token}"}
    seen = {"sql": 0, "redis": 0}
    event.listen(
        get_engine(get_settings().database_url),
        "before_cursor_execute",
        lambda *_: seen.__setitem__("sql", seen["sql"] + 1),
    )
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, *args, **kwargs):  # one call per round trip (a pipeline is one)
        seen["redis"] += 1
        return send(self, *args, **kwargs)

    redis.connection.AbstractConnection.send_packed_command = counted
    made = iter(range(10**9))

    def create() -> None:
        body = {"email": f"inproc{next(made)}@example.org", "lists": [list_id]}
        assert client.post("/api/v1/subscribers", json=body, headers=auth).status_code == 202

    def read() -> None:
        path = f"/api/v1/subscribers?after={random.randint(60, READERS)}"
        assert client.get(path, headers=auth).status_code == 200

    figures = {}
    try:
        for name, request in (("create", create), ("read", read)):
            for _ in range(20):  # warm: statements prepared, pools filled
                request()
            seen.update(sql=0, redis=0)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(count):
                request()
            figures[name] = {
                "wall_ms": (time.perf_counter() - wall) * 1000 / count,
                "cpu_ms": (time.process_time() - cpu) * 1000 / count,
                "sql": seen["sql"] / count,
                "redis": seen["redis"] / count,
            }
    finally:
        redis.connection.AbstractConnection.send_packed_command = send
    return figures


def lua_script(token: str, list_id: int, directory: Path) -> Path:
    """Every other request creates a reader; the others read a page after a random id."""
    path = directory / "api.lua"
    path.write_text(
        f'local token = "{token}"\n'
        "local n = 0\n"
        "local counter = 0\n"
        "function setup(thread) n = n + 1; thread:set('tid', n) end\n"
        "function request()\n"
        "  counter = counter + 1\n"
        "  local auth = 'Bearer ' .. token\n"
        "  if counter % 2 == 0 then\n"
        "    local body = '{\"email\": \"new' .. tid .. '-' .. counter .. '@example.org\", '\n"
        f"      .. '\"lists\": [{list_id}]}}'\n"
        "    return wrk.format('POST', '/api/v1/subscribers',\n"
        "      {{['Authorization'] = auth, ['Content-Type'] = 'application/json'}}, body)\n"
        "  end\n"
        f"  local after = math.random(60, {READERS})\n"
        "  return wrk.format('GET', '/api/v1/subscribers?after=' .. after,\n"
        "    {{['Authorization'] = auth}})\n"
        "end\n".replace("{{", "{").replace("}}", "}")
    )
    return path


def serve(port: int, env: dict, log: Path, token: str) -> subprocess.Popen:
    """gunicorn on loopback, once it answers the API (booting is not what we measure)."""
    venv_bin = Path(sys.executable).parent
    cmd = [str(venv_bin / "gunicorn"), "--bind", f"127.0.0.1:{port}", *GUNICORN]
    proc = start([*cmd, "webapp:create_app()"], env, log)
    try:
        wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 120
        answered = 0
        while answered < 20 and time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            auth = {"Authorization": f"Bearer {token}"}
            connection.request("GET", "/api/v1/lists", headers=auth)
            status = connection.getresponse().status
            connection.close()
            answered = answered + 1 if status == 200 else 0
        if answered < 20:
            raise RuntimeError(f"gunicorn did not answer the API: see {log}")
    except BaseException:
        stop(proc)  # the caller never got it: it would outlive the run
        raise
    return proc


def probe(port: int, token: str, list_id: int) -> None:
    """One request of each kind the script makes, so a refusal shows its reason, not a count."""
    auth = {"Authorization": f"Bearer {token}"}
    body = f'{{"email": "probe@example.org", "lists": [{list_id}]}}'
    for method, path, payload in (
        ("POST", "/api/v1/subscribers", body),
        ("GET", f"/api/v1/subscribers?after={READERS // 2}", None),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {**auth, "Content-Type": "application/json"} if payload else auth
        connection.request(method, path, body=payload, headers=headers)
        answer = connection.getresponse()
        text = answer.read().decode(errors="replace")
        connection.close()
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {text[:500]}")


def run(backend: str, duration: int, connections: int, requests: int = 200) -> dict:
    """The whole benchmark; returns its figures."""
    workdir = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    redis = RedisServer().start()
    pg = PostgresServer().start() if backend == "postgresql" else None
    web = None
    try:
        url = pg.create_database("bench") if pg else f"sqlite:///{workdir / 'bench.db'}"
        port = free_port()
        env = environment(redis, url, port, workdir)
        env["CLARION_API_RATE_LIMIT"] = "10000000/minute"  # the token is the whole load here
        token, list_id = prepare(env)
        inproc = in_process(token, list_id, requests)
        script = lua_script(token, list_id, workdir)
        web = serve(port, env, workdir / "web.log", token)
        probe(port, token, list_id)
        load_before = os.getloadavg()
        result = wrk(f"http://127.0.0.1:{port}", duration, script, connections)
        load_after = os.getloadavg()
        return {
            "backend": backend,
            "duration": duration,
            "requests": requests,
            "connections": connections,
            "api": result,
            "in_process": inproc,
            "load": (load_before, load_after),
            "cpus": os.cpu_count(),
        }
    finally:
        if web is not None:
            stop(web)
        redis.cleanup()
        if pg:
            pg.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def verdict(r: dict) -> list[str]:
    """Which targets were missed (empty when all were met)."""
    a: WrkResult = r["api"]
    missed = []
    if a.rps < TARGET_RPS:
        missed.append(f"{a.rps:.0f} requests/s < {TARGET_RPS}")
    if a.p99_ms >= TARGET_P99_MS:
        missed.append(f"p99 {a.p99_ms:.1f} ms >= {TARGET_P99_MS:.0f} ms")
    if a.non_3xx:
        missed.append(f"{a.non_3xx} answers were not 2xx")
    return missed


def report(r: dict) -> str:
    """The "## API" section of bench/README.md."""
    a = r["api"]
    (b1, b5, _), (a1, a5, _) = r["load"]
    missed = verdict(r)
    outcome = "met" if not missed else "MISSED: " + "; ".join(missed)
    return f"""## API

Command: `python -m bench.api --backend {r["backend"]} --duration {r["duration"]}` (add `--write`
to update this section). wrk (2 threads, {r["connections"]} connections, {r["duration"]} s)
against gunicorn as the Procfile runs it, with one token: every other request creates a reader
(double opt-in: consent record, confirmation mail queued), the others read a page of 50 readers
after a random id, with their lists, tags and suppression. {READERS:,} readers to start with.

| backend | requests/s | p50 | p99 | non-2xx |
|---|---:|---:|---:|---:|
| {r["backend"]} | {a.rps:,.0f} | {a.p50_ms:.2f} ms | {a.p99_ms:.2f} ms | {a.non_3xx:,} |

Targets (>= {TARGET_RPS}/s, p99 < {TARGET_P99_MS:.0f} ms): {outcome}.

In-process, before the server starts (Flask test client, same database, {r["requests"]} of each):

| request | wall | CPU (this process) | SQL statements | Redis round trips |
|---|---:|---:|---:|---:|
{_in_process_rows(r["in_process"])}

Machine: {r["cpus"]} cores: load average {b1:.2f} / {b5:.2f} (1 / 5 min) before the run,
{a1:.2f} / {a5:.2f} after.{_busy(r)}
"""


def _in_process_rows(figures: dict[str, dict[str, float]]) -> str:
    names = {"create": "POST /api/v1/subscribers", "read": "GET /api/v1/subscribers?after="}
    return "\n".join(
        f"| {names[k]} | {f['wall_ms']:.2f} ms | {f['cpu_ms']:.2f} ms | {f['sql']:.0f} "
        f"| {f['redis']:.0f} |"
        for k, f in figures.items()
    )


def _busy(r: dict) -> str:
    if r["load"][0][0] <= r["cpus"]:
        return ""
    return (
        "\n\nOther processes kept the machine busier than its cores before the run started: "
        "these figures say more about them than about the API. Re-run on a quiet machine."
    )


def main() -> int:
    """Run, print the section, and optionally write it to bench/README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="of each kind, in-process")
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()
    result = run(args.backend, args.duration, args.connections, args.requests)
    section = report(result)
    print(section)
    if args.write:
        write_readme_section("API", section)
    return 1 if verdict(result) else 0


if __name__ == "__main__":
    sys.exit(main())
