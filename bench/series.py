"""A series tick: moving every reader whose next step fell due into that step's ledger.

    nice -n 5 .venv/bin/python -m bench.series [--rows 100000] [--backend postgresql|sqlite]
        [--repeat 3] [--write]

rows readers on one list, all in one three-step series (joined the list; goal: signed
petition 1; step 2, a day after step 1, only for those who have not signed petition 2). Every
reader has had step 1 (its ledger rows are there) and has waited two days: one tick moves all
of them on to step 2 — a fifth have signed petition 2 and skip it, the others get its ledger
row and their batches. Timed: the tick's transaction (clarion.series.tick.tick_series and the
commit) and the hand-out after it (links and deliveries into Redis, one refill task, recorded
here instead of sent). Each run starts from the same state; the figure is the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta

from sqlalchemy import bindparam, func, select, text

from clarion.db import UTCDateTime, utcnow

STEP_DELAYS_HOURS = (0, 24, 48)


def _numbers(rows: int, dialect: str) -> str:
    if dialect == "postgresql":
        return f"generate_series(1, {rows}) AS s(i)"
    return (
        f"(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) "
        "SELECT i FROM c) AS s"
    )


def _readers(session, rows: int, dialect: str) -> None:
    uid = "md5(i::text)" if dialect == "postgresql" else "hex(randomblob(16))"
    now = "CURRENT_TIMESTAMP"
    run = lambda sql: session.execute(text(sql))  # noqa: E731
    run(f"INSERT INTO lists (slug, name, description, is_public, created_at) "
        f"VALUES ('one', 'One', '', true, {now})")  # fmt: skip
    run(f"INSERT INTO subscribers (uid, email, name, language, source, created_at, updated_at) "
        f"SELECT {uid}, 'user' || i || '@example.org', 'N' || i, 'en', 'bench', {now}, {now} "
        f"FROM {_numbers(rows, dialect)}")  # fmt: skip
    run(f"INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
        f"SELECT id, 1, 'subscribed', {now}, {now} FROM subscribers")  # fmt: skip


def _series(session):
    """The three-step series, its steps ready (frozen, sending)."""
    from clarion.editors import create_editor
    from clarion.models import Alert, Petition, Role
    from clarion.series import editing

    session.add_all([Petition(slug=f"p{n}", title=f"P{n}") for n in (1, 2)])
    editor = create_editor(session, "owner@example.org", Role.OWNER, "bench horse battery staple")
    session.flush()
    series = editing.create(
        session,
        editor[0],
        editing.SeriesValues(name="Journey", list_id=1, trigger="joined",
                             goal={"type": "signed", "petition": 1}),
    )  # fmt: skip
    for number, hours in enumerate(STEP_DELAYS_HOURS, 1):
        condition = {"not": {"type": "signed", "petition": 2}} if number == 2 else None
        step = editing.add_step(
            session, editor[0], series, editing.StepValues(delay_hours=hours, conditions=condition)
        )
        alert = session.get(Alert, step.alert_id)
        alert.subject = f"Step {number}"
        alert.fields = {"body_md": f"Step {number}. Act now: https://blog.example.org/{number}"}
    session.flush()
    editing.resume(session, editor[0], series)
    session.commit()
    return series


def _history(session, series, first_alert: int) -> None:
    """Every reader entered three days ago, had step 1, and has waited two days since."""
    now = "CURRENT_TIMESTAMP"
    stamp = lambda sql, **values: session.execute(  # noqa: E731
        text(sql).bindparams(*(bindparam(k, type_=UTCDateTime()) for k in values)), values
    )
    stamp("INSERT INTO series_entries (series_id, subscriber_id, trigger_key, entered_at, "
          f"next_step, step_since, state, tick, updated_at) SELECT {series.id}, id, 'list:1', "
          ":entered, 1, :since, 'active', 0, :entered FROM subscribers",
          entered=utcnow() - timedelta(days=3), since=utcnow() - timedelta(days=2))  # fmt: skip
    session.execute(text(
        "INSERT INTO deliveries (alert_id, subscriber_id, status, attempts, last_reply, "
        f"updated_at) SELECT {first_alert}, id, 'sent', 1, '', {now} FROM subscribers"
    ))  # fmt: skip
    session.execute(text(
        "INSERT INTO signatures (uid, petition_id, email, name, country, comment, "
        f"subscriber_id, created_at, confirmed_at) SELECT 's' || id, 2, email, 'N', 'BY', '', "
        f"id, {now}, {now} FROM subscribers WHERE id % 5 = 0"
    ))  # fmt: skip
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()


def _rewind(session, series, second_alert: int) -> None:
    """Back to the state before the tick: everyone waiting for step 2, its ledger empty."""
    since = utcnow() - timedelta(days=2)
    session.execute(
        text(
            "UPDATE series_entries SET next_step = 1, state = 'active', tick = 0, "
            "step_since = :since WHERE series_id = :series"
        ).bindparams(bindparam("since", type_=UTCDateTime())),
        {"since": since, "series": series.id},
    )
    for table in ("delivery_batches", "deliveries"):
        session.execute(text(f"DELETE FROM {table} WHERE alert_id = {second_alert}"))
    session.execute(text(f"UPDATE alerts SET recipients = 0 WHERE id = {second_alert}"))
    session.commit()


def _one_tick(series_id: int) -> tuple[float, float, int]:
    """The tick of the series as the beat runs it: (transaction ms, hand-out ms, rows)."""
    from clarion.db import session_scope
    from clarion.series import tick

    now = utcnow()
    start = time.perf_counter()
    with session_scope() as session:
        done = tick.tick_series(session, series_id, now)
    middle = time.perf_counter()
    tick.hand_out(done)
    end = time.perf_counter()
    return (middle - start) * 1000, (end - middle) * 1000, sum(len(ids) for _a, ids in done)


def run(rows: int, backend: str, repeat: int) -> dict:
    """Build the data, then time `repeat` ticks from the same state."""
    from bench._setup import database
    from clarion import jobqueue
    from clarion.db import session_factory
    from clarion.models import SeriesEntry
    from clarion.series import editing
    from tests.services import RedisServer

    redis_server = RedisServer().start()
    os.environ["CLARION_REDIS_URL"] = redis_server.url
    published: list = []
    jobqueue.set_backend(lambda name, args, countdown: published.append(name))
    try:
        with database(backend) as url:
            session = session_factory(url)()
            start = time.perf_counter()
            _readers(session, rows, session.bind.dialect.name)
            series = _series(session)
            first, second, _third = (s.alert_id for s in editing.steps_of(session, series.id))
            _history(session, series, first)
            print(f"{backend}: {rows:,} readers in the series in "
                  f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
            samples = []
            for n in range(repeat):
                if n:
                    _rewind(session, series, second)
                samples.append(_one_tick(series.id))
                moved = session.scalar(
                    select(func.count()).where(
                        SeriesEntry.series_id == series.id, SeriesEntry.next_step == 2
                    )
                )
                print(f"  tick {n + 1}: {samples[-1][0]:.0f} ms + hand-out "
                      f"{samples[-1][1]:.0f} ms, {moved:,} moved, {samples[-1][2]:,} ledger rows",
                      flush=True)  # fmt: skip
                session.commit()
            again = _one_tick(series.id)
            assert again[2] == 0, "a second tick at once wrote ledger rows"
            session.close()
    finally:
        redis_server.cleanup()
    return {
        "rows": rows,
        "moved": moved,
        "ledger": samples[-1][2],
        "tick_ms": statistics.median(s[0] for s in samples),
        "hand_out_ms": statistics.median(s[1] for s in samples),
        "again_ms": again[0],
    }


def section(results: dict[str, dict], repeat: int) -> str:
    """The bench/README.md section for these results."""
    load = os.getloadavg()
    lines = [
        "## Series",
        "",
        "`nice -n 5 .venv/bin/python -m bench.series [--rows N] [--backend postgresql|sqlite] "
        "[--write]` — N readers in one three-step series (goal: signed petition 1), all of "
        "them two days past step 1; one tick moves them all to step 2 (a day after step 1, only "
        "for those who have not signed petition 2: a fifth skip it). Timed: the tick's "
        "transaction (`series.tick.tick_series` and the commit: goal, leaving, the claim "
        "UPDATE, the ledger INSERT … SELECT, the batches) and the hand-out after it (the "
        f"deliveries into Redis for the click path, one refill task); median of {repeat} runs "
        "from the same state.",
        f"{time.strftime('%d %b %Y, %H:%M UTC', time.gmtime())}; 2 CPUs shared with other "
        f"helpers' test runs, load average {load[0]:.2f} / {load[1]:.2f} (1 / 5 min) after "
        "the runs.",
        "",
        "| backend | readers moved | ledger rows | tick (transaction) | hand-out | a second tick "
        "at once | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for backend, r in results.items():
        total = (r["tick_ms"] + r["hand_out_ms"]) / 1000
        verdict = "met" if total < 30 else "**not met**"
        lines.append(
            f"| {backend} | {r['moved']:,} | {r['ledger']:,} | {r['tick_ms'] / 1000:.1f} s | "
            f"{r['hand_out_ms'] / 1000:.1f} s | {r['again_ms']:.0f} ms, nothing written | "
            f"< 30 s: {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from bench._setup import write_readme_section

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backend", action="append", choices=["postgresql", "sqlite"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()
    results = {b: run(args.rows, b, args.repeat) for b in args.backend or ["postgresql", "sqlite"]}
    text_ = section(results, args.repeat)
    print("\n" + text_)
    if args.write:
        write_readme_section("Series", text_)


if __name__ == "__main__":
    main()
