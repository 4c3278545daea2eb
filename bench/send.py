"""Benchmark: a DKIM-signed alert to N subscribers through W Celery workers, against a baseline.

    python -m bench.send [--recipients 100000] [--workers 2] [--dkim rsa|ed25519|both|none]
                         [--backend postgresql|sqlite] [--baseline-only | --no-baseline]
                         [--versions-compare [--rounds 2]]

Everything runs on loopback in temporary directories: a private PostgreSQL (or SQLite) and Redis,
Postfix's C `smtp-sink` as the receiving server, `celery worker --concurrency W`. The baseline,
measured in the same run against the same sink, pushes the same number of pre-built messages of
the same size with plain smtplib over W connections (one process each). Printed: messages per
second for both and their ratio, time to the first message, peak RSS of each worker process.

--versions-compare: readers spread over five languages; alerts written in one language and in
five (the primary and four versions) are sent alternately to the same audience (one, five, one,
five, ... `--rounds` pairs), each through a fresh worker; printed per run and as medians.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._setup import start_bulk_worker  # noqa: E402
from tests.services import PostgresServer, RedisServer, free_port, wait_for_port  # noqa: E402

PETITION_WHY = """\
Ales Bialiatski, Nobel Peace Prize laureate, has been held for **1,000 days** for defending
human rights. His health is failing, and he has not been allowed to see his family since his
transfer. Letters from abroad are among the few things that reach him.

* Sign the petition to the Prosecutor General asking for his release.
* Share it with three friends who care about political prisoners.
* Write to him: [our guide to writing letters](https://blog.example.org/letters) explains how.

> "Every letter tells the guards that the world is watching." — a former prisoner

The petition will be handed over on the anniversary of his arrest, with every signature
collected by then. Read more on [our blog](https://blog.example.org/ales-1000-days).
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipients", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2, help="worker processes (--concurrency)")
    # both: an RSA and an Ed25519 signature on every message (CLARION_DKIM_KEYS).
    p.add_argument("--dkim", choices=["rsa", "ed25519", "both", "none"], default="rsa")
    p.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--baseline-only", action="store_true")
    p.add_argument("--versions-compare", action="store_true")
    p.add_argument("--rounds", type=int, default=2, help="pairs of runs for --versions-compare")
    return p.parse_args()


LANGUAGES = ("en", "be", "ru", "uk", "pl")


def start_sink(port: int) -> subprocess.Popen:
    exe = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [exe, *user, "-h", "sink.example.org", f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return proc


def fill_database(url: str, n: int, languages: tuple[str, ...] = ("en",)) -> int:
    """Schema, one list, n confirmed subscribers (COPY on PostgreSQL), their languages taken in
    turn from `languages`; returns the list id."""
    from sqlalchemy import insert, text

    from clarion import schema
    from clarion.db import get_engine, session_scope
    from clarion.models import MailingList, Subscriber

    schema.upgrade(url)
    with session_scope(url) as session:
        ml = MailingList(slug="urgent", name="Urgent actions", from_email="alerts@example.org")
        session.add(ml)
        session.flush()
        list_id = ml.id
    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(
                "COPY subscribers (uid, email, name, language, created_at, updated_at) FROM STDIN"
            ) as copy:
                for i in range(n):
                    copy.write_row(
                        (
                            f"u{i:09d}",
                            f"reader{i}@example.net",
                            f"Reader {i}",
                            languages[i % len(languages)],
                            "2026-01-01T00:00:00Z",
                            "2026-01-01T00:00:00Z",
                        )
                    )
            cur.execute(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)"
                " SELECT id, %s, 'subscribed', now(), now() FROM subscribers",
                (list_id,),
            )
            raw.commit()
        finally:
            raw.close()
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with session_scope(url) as session:
            session.execute(
                insert(Subscriber),
                [
                    {
                        "uid": f"u{i:09d}",
                        "email": f"reader{i}@example.net",
                        "name": f"Reader {i}",
                        "language": languages[i % len(languages)],
                    }
                    for i in range(n)
                ],
            )
            session.execute(
                text(
                    "INSERT INTO subscriptions"
                    " (subscriber_id, list_id, status, created_at, updated_at)"
                    f" SELECT id, {list_id}, 'subscribed', datetime('now'), datetime('now')"
                    " FROM subscribers"
                )
            )
    return list_id


def dkim_env(directory: Path, kind: str) -> dict[str, str]:
    """The DKIM settings for `kind`: one key, both (RSA and Ed25519), or none."""
    if kind == "none":
        return {}
    from tests.sendkit import write_keys

    keys = write_keys(directory)
    if kind == "both":
        listed = f"rsa:{keys['rsa']},ed:{keys['ed25519']}"
        return {"CLARION_DKIM_DOMAIN": "example.org", "CLARION_DKIM_KEYS": listed}
    return {
        "CLARION_DKIM_DOMAIN": "example.org",
        "CLARION_DKIM_SELECTOR": "bench",
        "CLARION_DKIM_KEY_FILE": str(keys[kind]),
    }


def rsa_sign_us() -> str:
    """What one RSA-2048 signature costs on this machine right now, by `openssl speed`: it
    swings by a factor of three from day to day here, and RSA is most of a signed message."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "rsa2048"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("rsa 2048 bits"):
            return f"{float(line.split()[3].rstrip('s')) * 1e6:,.0f} µs"
    return "unknown"


def peak_rss_mb(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                out.append(int(line.split()[1]) / 1024)
    return out


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system (kernel: socket writes and reads) CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def pool_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


PETITION_FIELDS = {
    "petition_url": "https://petitions.example.org/ales",
    "petition_title": "Free Ales Bialiatski",
    "target": "The Prosecutor General",
    "why": PETITION_WHY,
    "ask": "Sign the petition",
}


def versions_of(count: int) -> dict[str, dict]:
    """Versions in the first `count - 1` languages after English, each as long as the primary."""
    return {
        code: {
            "subject": f"[{code}] 1,000 days: sign for Ales",
            "preheader": f"[{code}] Letters reach him. Signatures free him.",
            "fields": {**PETITION_FIELDS, "petition_title": f"[{code}] Free Ales Bialiatski"},
            "unfinished": False,
        }
        for code in LANGUAGES[1:count]
    }


def run_clarion(
    env: dict[str, str],
    list_id: int,
    workers: int,
    tmp: Path,
    versions: int = 1,
    queues: str = "bulk",
    alongside: Callable[[], object] | None = None,
) -> dict:
    """Send one alert (in `versions` languages) through a real worker consuming `queues`;
    returns timings and worker memory. `alongside` is called once the send has started."""
    os.environ.update(env)
    from sqlalchemy import func, select

    from clarion.config import get_settings, reset_settings
    from clarion.db import session_scope
    from clarion.delivery import batchrun, dispatch, sending
    from clarion.delivery.messages import Recipient
    from clarion.models import Alert, AlertKind, AlertStatus, Delivery

    reset_settings()
    import tasks  # noqa: F401  registers the task publisher for this process

    worker = start_bulk_worker({}, workers, tmp / "worker.log", "bench", queues)
    with session_scope() as session:
        alert = Alert(
            kind=AlertKind.PETITION,
            name="Ales 1000 days",
            subject="1,000 days: sign for Ales",
            preheader="Letters reach him. Signatures free him.",
            fields=dict(PETITION_FIELDS),
            audience={"lists": [list_id]},
            sender_list_id=list_id,
            language="en",
            translations=versions_of(versions),
        )
        session.add(alert)
        session.flush()
        alert_id = alert.id
    started = time.time()
    with session_scope() as session:
        sending.start(session, session.get(Alert, alert_id))
    dispatch.enqueue_dispatch(alert_id)
    if alongside is not None:
        alongside()
    peaks: dict[int, float] = {}
    cpu: dict[int, tuple[float, float]] = {}
    while True:
        time.sleep(0.5)
        for pid in pool_children(worker.pid):
            for rss in peak_rss_mb([pid]):
                peaks[pid] = max(peaks.get(pid, 0.0), rss)
            cpu[pid] = cpu_seconds(pid)
        with session_scope() as session:
            status = session.get(Alert, alert_id).status
        if status != AlertStatus.SENDING:
            break
    with session_scope() as session:
        alert = session.get(Alert, alert_id)
        first, last = session.execute(
            select(func.min(Delivery.sent_at), func.max(Delivery.sent_at)).where(
                Delivery.alert_id == alert_id
            )
        ).one()
        sent = session.scalar(
            select(func.count()).where(Delivery.alert_id == alert_id, Delivery.status == "sent")
        )
        finished = alert.finished_at.timestamp()
        sample = Recipient(1, "u1", "reader1@example.net", "Reader 1")
        size = len(batchrun.skeleton_for(alert, get_settings()).primary.build(sample).data)
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(60)
    return {
        "sent": sent,
        "seconds": finished - started,
        "first": first.timestamp() - started,
        "steady": sent / max(0.001, (last - first).total_seconds()),
        "cpu_us": sum(u + k for u, k in cpu.values()) / max(1, sent) * 1e6,
        "sys_us": sum(k for _, k in cpu.values()) / max(1, sent) * 1e6,
        "rss": sorted(peaks.values()),
        "size": size,
        "status": status.value,
    }


def _baseline_worker(port: int, messages: list[bytes], count: int, queue) -> None:
    smtp = smtplib.SMTP("127.0.0.1", port)
    for i in range(count):
        smtp.sendmail(
            "b+bench@bounces.example.org", [f"reader{i}@example.net"], messages[i % len(messages)]
        )
    smtp.quit()
    queue.put(count)


def run_baseline(port: int, messages: list[bytes], total: int, connections: int) -> dict:
    """Pre-built messages pushed by plain smtplib, one connection per process."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    share = [
        total // connections + (1 if i < total % connections else 0) for i in range(connections)
    ]
    procs = [ctx.Process(target=_baseline_worker, args=(port, messages, n, queue)) for n in share]
    started = time.time()
    before = os.times()
    for p in procs:
        p.start()
    sent = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {"sent": sent, "seconds": time.time() - started, "cpu_us": cpu / max(1, sent) * 1e6}


def prebuilt(settings_env: dict[str, str], n: int = 500) -> list[bytes]:
    """Realistic messages of the benchmark's own alert, built before timing starts."""
    os.environ.update(settings_env)
    from clarion.alerts.freeze import freeze_content
    from clarion.alerts.rendering import AlertContent, SiteContext
    from clarion.config import get_settings, reset_settings
    from clarion.delivery.messages import AlertFrame, Recipient, Skeleton

    reset_settings()
    s = get_settings()
    frozen = freeze_content(
        AlertContent(
            "petition",
            "1,000 days: sign for Ales",
            {
                "petition_url": "https://petitions.example.org/ales",
                "petition_title": "Free Ales Bialiatski",
                "why": PETITION_WHY,
            },
        ),
        SiteContext(s.site_name, s.base_url, "Urgent actions"),
    )
    skeleton = Skeleton(
        AlertFrame(
            1,
            "benchalert",
            frozen.subject,
            frozen.html,
            frozen.text,
            {
                "from": "Free Them <alerts@example.org>",
                "reply_to": None,
                "list": {"id": 1, "slug": "urgent", "name": "Urgent actions"},
            },
        ),
        s,
    )
    return [
        skeleton.build(Recipient(i, f"u{i}", f"reader{i}@example.net", f"Reader {i}")).data
        for i in range(n)
    ]


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    redis_server = RedisServer().start()
    pg = PostgresServer().start() if args.backend == "postgresql" else None
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        url = pg.create_database("bench") if pg else f"sqlite:///{tmp / 'bench.db'}"
        env = {
            "CLARION_ENV": "test",
            "CLARION_DATABASE_URL": url,
            "CLARION_REDIS_URL": redis_server.url,
            "CLARION_SMTP_URL": f"smtp://127.0.0.1:{sink_port}?max_connections={args.workers + 2}",
            "CLARION_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "CLARION_INSTANCE_DIR": str(tmp / "instance"),
            "CLARION_BASE_URL": "https://news.example.org",
            "CLARION_FROM": "Free Them <alerts@example.org>",
            "CLARION_BOUNCE_DOMAIN": "bounces.example.org",
            "CLARION_BATCH_SIZE": str(args.batch_size),
            "CLARION_SEND_WINDOW": str(2 * args.workers + 2),
        }
        env.update(dkim_env(tmp, args.dkim))
        load = os.getloadavg()
        print(
            f"# {args.recipients} recipients, {args.workers} workers, DKIM {args.dkim}, "
            f"{args.backend}; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"openssl speed rsa2048: {rsa_sign_us()} a signature"
        )
        ours = None
        if args.versions_compare:
            compare_versions(env, url, args, tmp)
            return
        if not args.baseline_only:
            t = time.time()
            list_id = fill_database(url, args.recipients)
            print(f"audience created in {time.time() - t:.1f}s")
            ours = run_clarion(env, list_id, args.workers, tmp)
            rate = ours["sent"] / ours["seconds"]
            print(
                f"clarion : {ours['sent']} sent ({ours['status']}) in {ours['seconds']:.1f}s = "
                f"{rate:,.0f} msg/s; first message after {ours['first']:.2f}s; "
                f"{ours['size']:,} bytes a message"
            )
            print(f"          between first and last message: {ours['steady']:,.0f} msg/s")
            print(
                f"          worker CPU per message: {ours['cpu_us']:,.0f} µs "
                f"(of which in the kernel: {ours['sys_us']:,.0f} µs)"
            )
            print(
                "          peak RSS per worker process: "
                + ", ".join(f"{r:.1f} MB" for r in ours["rss"])
            )
        if not args.no_baseline:
            messages = prebuilt(env)
            base = run_baseline(sink_port, messages, args.recipients, args.workers)
            brate = base["sent"] / base["seconds"]
            print(
                f"baseline: {base['sent']} pre-built messages by smtplib over {args.workers} "
                f"connections in {base['seconds']:.1f}s = {brate:,.0f} msg/s; "
                f"CPU per message: {base['cpu_us']:,.0f} µs"
            )
            if ours:
                print(f"ratio   : {ours['sent'] / ours['seconds'] / brate:.2f}")
        load = os.getloadavg()
        print(
            f"# load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"openssl speed rsa2048: {rsa_sign_us()} a signature"
        )
    finally:
        sink.terminate()
        redis_server.cleanup()
        if pg:
            pg.cleanup()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


def compare_versions(env: dict[str, str], url: str, args: argparse.Namespace, tmp: Path) -> None:
    """Alerts in one and in five languages, sent alternately to readers of five languages."""
    import statistics

    t = time.time()
    list_id = fill_database(url, args.recipients, LANGUAGES)
    print(f"audience created in {time.time() - t:.1f}s, languages {', '.join(LANGUAGES)}")
    results: dict[int, list[dict]] = {1: [], 5: []}
    for _ in range(args.rounds):
        for versions in (1, 5):
            got = run_clarion(env, list_id, args.workers, tmp, versions)
            results[versions].append(got)
            print(
                f"{versions} version(s): {got['sent']} sent ({got['status']}) in "
                f"{got['seconds']:.1f}s = {got['sent'] / got['seconds']:,.0f} msg/s; "
                f"steady {got['steady']:,.0f} msg/s; worker CPU {got['cpu_us']:,.0f} µs/msg"
            )
    medians = {}
    for versions, runs in results.items():
        rate = statistics.median(r["sent"] / r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        medians[versions] = (rate, cpu)
        print(f"median, {versions} version(s): {rate:,.0f} msg/s, {cpu:,.0f} µs/msg")
    print(
        f"five versions vs one: rate {medians[5][0] / medians[1][0]:.3f}, "
        f"CPU {medians[5][1] / medians[1][1]:.3f}"
    )


if __name__ == "__main__":
    main()
