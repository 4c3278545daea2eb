"""Benchmark: sending to a slow receiver, against what its connections allow.

    python -m bench.slow [--delay 2] [--connections 8] [--seconds 120] [--lease 60]
                         [--recipients 2000] [--backend sqlite|postgresql]

A counting SMTP server on loopback (aiosmtpd) takes `delay` seconds over every message and
allows `connections` at once; a Celery worker with that many pool processes sends one alert to
it. The baseline, computed for the same run, is the receiver's capacity: connections / delay
messages a second. Printed: messages accepted between the first `warm-up` seconds and the end of
the run, the rate, its share of the capacity, and how many SMTP sessions were opened (a batch
that keeps its connection opens one; one handed out again opens another).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._setup import start_bulk_worker  # noqa: E402
from bench.send import fill_database  # noqa: E402
from tests.faultsmtp import FaultServer, Plan  # noqa: E402
from tests.services import PostgresServer, RedisServer  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--delay", type=float, default=2.0, help="seconds the server takes a message")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--seconds", type=float, default=120.0, help="length of the run")
    p.add_argument("--warm-up", type=float, default=10.0)
    p.add_argument("--lease", type=int, default=60, help="CLARION_SEND_LEASE_SECONDS")
    p.add_argument("--recipients", type=int, default=2000)
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clarion-bench-slow-"))
    redis_server = RedisServer().start()
    pg = PostgresServer().start() if args.backend == "postgresql" else None
    server = FaultServer(Plan(delay=args.delay))
    server.__enter__()
    worker = None
    try:
        url = pg.create_database("bench") if pg else f"sqlite:///{tmp / 'bench.db'}"
        env = {
            "CLARION_ENV": "test",
            "CLARION_DATABASE_URL": url,
            "CLARION_REDIS_URL": redis_server.url,
            "CLARION_SMTP_URL": f"smtp://127.0.0.1:{server.port}"
            f"?max_connections={args.connections}",
            "CLARION_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "CLARION_INSTANCE_DIR": str(tmp / "instance"),
            "CLARION_BASE_URL": "https://news.example.org",
            "CLARION_FROM": "Free Them <alerts@example.org>",
            "CLARION_BOUNCE_DOMAIN": "bounces.example.org",
            "CLARION_SEND_LEASE_SECONDS": str(args.lease),
            "CLARION_SEND_WINDOW": str(2 * args.connections),
        }
        os.environ.update(env)
        list_id = fill_database(url, args.recipients)
        from clarion.config import reset_settings

        reset_settings()
        import tasks  # noqa: F401  registers the task publisher for this process
        from clarion.db import session_scope
        from clarion.delivery import dispatch, sending
        from clarion.models import Alert, AlertKind

        worker = start_bulk_worker(env, args.connections, tmp / "worker.log", "slow")
        with session_scope() as session:
            alert = Alert(
                kind=AlertKind.NEWSLETTER,
                name="slow",
                subject="A slow receiver",
                fields={"body_md": "Write to Ales today."},
                audience={"lists": [list_id]},
                sender_list_id=list_id,
            )
            session.add(alert)
            session.flush()
            alert_id = alert.id
            sending.start(session, alert)
        dispatch.enqueue_dispatch(alert_id)
        started = time.time()
        time.sleep(args.warm_up)
        first = server.handler.accepted
        time.sleep(max(0.0, args.seconds - args.warm_up))
        accepted = server.handler.accepted - first
        span = time.time() - started - args.warm_up
        rate = accepted / span
        capacity = args.connections / args.delay
        print(
            f"# slow receiver: {args.delay:g} s a message, {args.connections} connections, "
            f"lease {args.lease} s, {args.backend}, load {os.getloadavg()[0]:.2f}"
        )
        print(f"capacity (baseline): {capacity:.2f} msg/s")
        print(
            f"clarion : {accepted} messages in {span:.0f} s after a {args.warm_up:g} s warm-up = "
            f"{rate:.2f} msg/s, {rate / capacity:.0%} of capacity; "
            f"{server.handler.sessions} SMTP sessions, {server.handler.duplicates()} duplicates"
        )
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
        server.__exit__(None, None, None)
        redis_server.cleanup()
        if pg:
            pg.cleanup()


if __name__ == "__main__":
    main()
