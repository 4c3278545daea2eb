"""Benchmark: does delivering webhooks slow a send? A send alone against the same send while
10,000 webhook events are delivered to a local receiver, interleaved, median ratio.

    .venv/bin/python -m bench.webhooks [--recipients 25000] [--events 10000] [--rounds 4]
                                       [--dkim ed25519|rsa] [--layout shared|separate]

Everything on loopback, as bench.send sets it up: a private PostgreSQL and Redis, Postfix's
`smtp-sink`, N confirmed readers. An owner registers one endpoint for subscriber.confirmed at a
receiver on loopback (a threaded HTTP server in its own process that answers 204 and counts;
CLARION_ALLOW_PRIVATE_FETCH lets the SSRF guard allow it). An unmeasured send comes first (to
warm the database, the page cache and the workers' imports); then each round sends the alert
twice, each through a fresh worker: alone and with the events' deliveries published as the
send starts, in turn alone first, then with webhooks first, so that a machine whose load
falls or rises during the sitting does not favour one side of every ratio.
The events are written before that run by `outbox.record`, 100 a transaction as the
application does; the tasks their commits published are held back and published when the send
starts (what the commits would have done: one task a delivery before deliveries were batched,
one an endpoint since). The deliveries are made by Celery workers: `--layout shared` (the
Procfile: one worker, queues default, hooks and bulk, concurrency 2) or `separate` (a
bulk worker of 2 and a hooks worker of 1). Deliveries left when the send ends are then drained
(a worker of 2 on hooks, with the sweep every 30 s as beat runs it) and counted. The CPU a
delivery costs is measured from the hooks worker's processes (main and pool, its start-up
excluded), which is steadier on a shared machine than the rates. Run it from another checkout
to measure older code: it replays whatever tasks that code publishes.
Deliveries are paced while a send runs (CLARION_WEBHOOK_RATE_DURING_SEND, passed on from the
environment); the deliveries made during each send and after it are reported.
Target (issue 17): the send with webhooks is at most 5 % slower than alone.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._setup import start_bulk_worker  # noqa: E402
from bench.send import (  # noqa: E402
    cpu_seconds,
    dkim_env,
    fill_database,
    pool_children,
    run_clarion,
    start_sink,
)
from tests.services import PostgresServer, RedisServer, free_port, wait_for_port  # noqa: E402

CHUNK = 100  # events a transaction
TARGET_SLOWDOWN = 0.05


def receive(port: int, counter) -> None:
    """The receiver: every POST answered 204 and counted."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as receivers in production offer it

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with counter.get_lock():
                counter.value += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def register_endpoint(url: str) -> None:
    """An owner and one endpoint for subscriber.confirmed at the receiver."""
    from clarion.config import reset_settings
    from clarion.db import session_scope
    from clarion.editors import create_editor
    from clarion.integrations import webhooks
    from clarion.models import Role

    reset_settings()
    with session_scope() as session:
        owner, _ = create_editor(session, "owner@example.org", Role.OWNER)
        webhooks.create_endpoint(session, owner, url, ["subscriber.confirmed"])


def write_events(count: int) -> list[tuple[str, tuple]]:
    """`count` subscriber.confirmed events in the outbox, CHUNK a transaction, as the
    application writes them; the tasks their commits published, held back instead."""
    from clarion import jobqueue, outbox
    from clarion.db import session_scope

    held: list[tuple[str, tuple]] = []
    previous = jobqueue.set_backend(lambda name, args, _countdown: held.append((name, args)))
    try:
        for start in range(0, count, CHUNK):
            with session_scope() as session:
                for i in range(start, min(count, start + CHUNK)):
                    payload = {"subscriber_id": i + 1, "lists": [1]}
                    outbox.record(session, "subscriber.confirmed", payload, f"r{i}@example.net")
    finally:
        jobqueue.set_backend(previous)
    return held


def publish(held: list[tuple[str, tuple]]) -> None:
    """Publish the held tasks, as the commits would have: one a delivery before deliveries were
    batched, one an endpoint since (the same task held twice is published once)."""
    from clarion import jobqueue

    for name, args in dict.fromkeys(held):
        jobqueue.enqueue(name, *args)


def stop(worker) -> None:
    """A warm shutdown, as an operator's restart: the task running is finished first."""
    os.kill(worker.pid, signal.SIGTERM)
    try:
        worker.wait(120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)


def worker_cpu(pid: int) -> float:
    """CPU seconds of a Celery worker: its main process (which takes tasks from the broker)
    and its pool processes."""
    # bench.send's cpu_seconds gives (user, system) now: both are the deliveries' work.
    return sum(sum(cpu_seconds(p)) for p in [pid, *pool_children(pid)])


def drain(env: dict[str, str], counter, expected: int, tmp: Path) -> tuple[float, float, int]:
    """Deliver what is left with a worker on the hooks queue; seconds it took, the worker's
    CPU seconds and the deliveries it made."""
    from clarion.integrations import webhooks

    started, before = time.time(), counter.value
    worker = start_bulk_worker(env, 2, tmp / "drain.log", "drain", "hooks,default")
    idle = worker_cpu(worker.pid)  # its start (imports, forking the pool) is not a delivery's
    try:
        deadline, swept = time.time() + 900, 0.0
        while counter.value < expected and time.time() < deadline:
            time.sleep(0.2)
            if time.time() - swept > 30:  # what beat does: claims lapsed, publishing lost
                webhooks.sweep()
                swept = time.time()
        cpu = worker_cpu(worker.pid) - idle
    finally:
        stop(worker)
    return time.time() - started, cpu, counter.value - before


def one_send(env, list_id, args, tmp, counter, with_events: bool) -> dict:
    """One send of the alert; with the events written alongside when `with_events`."""
    held = write_events(args.events) if with_events else []
    before = counter.value
    extra = None
    if args.layout == "separate":
        extra = start_bulk_worker(env, 1, tmp / "webhook-worker.log", "hooks", "hooks,default")
        for pid in [extra.pid, *pool_children(extra.pid)]:
            os.setpriority(os.PRIO_PROCESS, pid, args.hooks_nice)
        idle = worker_cpu(extra.pid)  # its start is not a delivery's

    def alongside() -> None:
        publish(held)

    queues = "bulk" if args.layout == "separate" else "default,hooks,bulk"
    hooks_cpu = 0.0
    try:
        result = run_clarion(env, list_id, 2, tmp, queues=queues, alongside=alongside)
    finally:
        if extra is not None:
            hooks_cpu = worker_cpu(extra.pid) - idle
            stop(extra)
    result["delivered_during"] = counter.value - before
    if with_events:
        during = result["delivered_during"]
        result["hooks_cpu_us"] = hooks_cpu / during * 1e6 if extra is not None and during else None
        result["drain_seconds"], drain_cpu, drained = drain(env, counter, before + args.events, tmp)
        result["drain_cpu_us"] = drain_cpu / drained * 1e6 if drained else None
        result["delivered"] = counter.value - before
    result["rate"] = result["sent"] / result["seconds"]
    return result


def cpu_note(us: float | None) -> str:
    """A delivery's worker CPU, when it was measured."""
    return "" if us is None else f" ({us / 1000:,.2f} ms CPU/delivery)"


def main() -> int:
    """Interleaved runs, alone and with webhooks; prints each and the median ratio."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipients", type=int, default=25_000)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--dkim", choices=["rsa", "ed25519"], default="ed25519")
    p.add_argument("--layout", choices=["shared", "separate"], default="shared")
    p.add_argument(
        "--hooks-nice",
        type=int,
        default=0,
        help="separate layout: the hooks worker's niceness (10: it takes only CPU the send leaves)",
    )
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    redis_server = RedisServer().start()
    pg = PostgresServer().start()
    sink_port, hook_port = free_port(), free_port()
    sink = start_sink(sink_port)
    counter = multiprocessing.Value("l", 0)
    receiver = multiprocessing.Process(target=receive, args=(hook_port, counter), daemon=True)
    receiver.start()
    wait_for_port(hook_port)
    try:
        url = pg.create_database("bench")
        env = {
            "CLARION_ENV": "test",
            "CLARION_DATABASE_URL": url,
            "CLARION_REDIS_URL": redis_server.url,
            "CLARION_SMTP_URL": f"smtp://127.0.0.1:{sink_port}?max_connections=4",
            "CLARION_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "CLARION_INSTANCE_DIR": str(tmp / "instance"),
            "CLARION_BASE_URL": "https://news.example.org",
            "CLARION_FROM": "Free Them <alerts@example.org>",
            "CLARION_BOUNCE_DOMAIN": "bounces.example.org",
            "CLARION_SEND_WINDOW": "6",
            "CLARION_ALLOW_PRIVATE_FETCH": "127.0.0.0/8",
            **dkim_env(tmp, args.dkim),
        }
        pace = os.environ.get("CLARION_WEBHOOK_RATE_DURING_SEND")
        if pace is not None:
            env["CLARION_WEBHOOK_RATE_DURING_SEND"] = pace
        os.environ.update(env)
        load = os.getloadavg()
        print(
            f"# {args.recipients:,} recipients, {args.events:,} events, DKIM {args.dkim}, "
            f"layout {args.layout} (hooks worker nice {args.hooks_nice}), "
            f"CLARION_WEBHOOK_RATE_DURING_SEND {pace if pace is not None else 'unset'}; "
            f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        list_id = fill_database(url, args.recipients)
        register_endpoint(f"http://127.0.0.1:{hook_port}/hook")
        warm = one_send(env, list_id, args, tmp, counter, False)
        print(f"warm-up (not counted): {warm['rate']:,.0f} msg/s", flush=True)
        alone, along = [], []
        for n in range(args.rounds):
            order = [(False, alone), (True, along)]
            if n % 2:  # alone first, then with webhooks first, and so on
                order.reverse()
            for with_events, runs in order:
                r = one_send(env, list_id, args, tmp, counter, with_events)
                runs.append(r)
                load = os.getloadavg()[0]
                extra = (
                    f"; webhooks delivered during the send {r['delivered_during']:,}"
                    f"{cpu_note(r['hooks_cpu_us'])}, all {r['delivered']:,} after a drain of "
                    f"{r['drain_seconds']:.1f} s{cpu_note(r['drain_cpu_us'])}"
                    if with_events
                    else ""
                )
                print(
                    f"round {n + 1}, {'with webhooks' if with_events else 'alone        '}: "
                    f"{r['sent']:,} sent ({r['status']}) in {r['seconds']:.1f} s = "
                    f"{r['rate']:,.0f} msg/s, worker CPU {r['cpu_us']:,.0f} µs/msg{extra} "
                    f"(load {load:.2f})",
                    flush=True,
                )
        ratios = [w["rate"] / a["rate"] for a, w in zip(alone, along, strict=True)]
        ratio = statistics.median(ratios)
        load = os.getloadavg()
        during = [r["delivered_during"] for r in along]
        after = [r["delivered"] - r["delivered_during"] for r in along]
        print(
            f"webhooks delivered during the send per round {', '.join(f'{d:,}' for d in during)}"
            f"; after it {', '.join(f'{a:,}' for a in after)}"
        )
        print(
            f"median send rate alone {statistics.median(r['rate'] for r in alone):,.0f} msg/s, "
            f"with webhooks {statistics.median(r['rate'] for r in along):,.0f} msg/s; "
            f"ratio per round {', '.join(f'{x:.3f}' for x in ratios)}; median {ratio:.3f} "
            f"({(1 - ratio) * 100:+.1f} % slower; target <= {TARGET_SLOWDOWN * 100:.0f} %: "
            f"{'met' if 1 - ratio <= TARGET_SLOWDOWN else 'NOT met'})"
        )
        print(f"# load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        return 0 if 1 - ratio <= TARGET_SLOWDOWN else 1
    finally:
        receiver.terminate()
        sink.terminate()
        redis_server.cleanup()
        pg.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
