"""Counting a segment: the audience count with three conditions against the plain list count.

    .venv/bin/python -m bench.segments [--rows 1000000] [--backend postgresql|sqlite]

rows subscribers, all on list 1; 30 sent alerts; 3 deliveries a subscriber (3·rows); clicks
on half a row a subscriber (rows/2), spread over the last 60 days; signatures of a fifth
(rows/5) on two petitions, half matched by address only. The segment: received the last
alert, did not sign petition 1, clicked something in the last 30 days. Each count is the
median of five runs of clarion.alerts.campaigns.audience_count after a warm-up (JIT off, as it
runs now), and of the same query with PostgreSQL free to JIT-compile it (as it ran before).
The ledger rate: readers a second that dispatch's page writer (INSERT … SELECT by id-range
pages, as a send writes them) puts into the ledger for the list alone, for the segment, and
for a second plain list holding exactly the segment's readers (the same rows to write, spread
over the ids as the segment's are), rolled back after, the segment's readers chosen beside the
writer in a thread a few pages ahead (clarion.delivery.members.ReadAhead, as dispatch does):
the median of --repeat runs of each, interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta

from sqlalchemy import func, insert, literal, select, text

from clarion.db import utcnow
from clarion.models import Alert, AlertKind, AlertStatus, Petition

ALERTS = 30


def _series(rows: int, dialect: str) -> str:
    if dialect == "postgresql":
        return f"generate_series(1, {rows}) AS s(i)"
    return (
        f"(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) "
        "SELECT i FROM c) AS s"
    )


def populate(session, rows: int, dialect: str) -> None:
    """The readers, alerts, ledger, clicks and signatures described above."""
    uid = "md5(i::text)" if dialect == "postgresql" else "hex(randomblob(16))"
    now = "CURRENT_TIMESTAMP"
    ago = (
        (lambda days: f"{now} - ({days}) * interval '1 day'")
        if dialect == "postgresql"
        else (lambda days: f"datetime('now', '-' || ({days}) || ' days')")
    )
    run = lambda sql: session.execute(text(sql))  # noqa: E731
    run(f"INSERT INTO lists (slug, name, description, is_public, created_at) "
        f"VALUES ('one', 'One', '', true, {now})")  # fmt: skip
    # Known for 90 days: long enough to count as inactive when they clicked nothing lately.
    run(f"INSERT INTO subscribers (uid, email, name, language, source, created_at, updated_at) "
        f"SELECT {uid}, 'user' || i || '@example.org', 'N' || i, 'en', 'bench', {ago(90)}, {now} "
        f"FROM {_series(rows, dialect)}")  # fmt: skip
    run(f"INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
        f"SELECT id, 1, 'subscribed', {now}, {now} FROM subscribers")  # fmt: skip
    # The 30 alerts (the last the newest) and two petitions, by the models.
    session.add_all([Petition(slug=f"p{n}", title=f"P{n}") for n in (1, 2)])
    first = utcnow() - timedelta(days=ALERTS)
    session.add_all(
        Alert(kind=AlertKind.NEWSLETTER, name=f"A{n}", subject=f"A{n}", fields={}, audience={},
              status=AlertStatus.SENT, frozen_at=first + timedelta(days=n))
        for n in range(1, ALERTS + 1)
    )  # fmt: skip
    session.flush()
    # Three alerts a reader, the last one to every other reader.
    run(f"INSERT INTO deliveries (alert_id, subscriber_id, status, attempts, last_reply, "
        f"updated_at) SELECT CASE k WHEN 0 THEN {ALERTS} ELSE 1 + (s.id + k) % ({ALERTS} - 1) "
        f"END, s.id, 'sent', 1, '', {now} FROM subscribers s "
        f"CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2) AS ks "
        f"WHERE k > 0 OR s.id % 2 = 0")  # fmt: skip
    run(f"INSERT INTO deliveries (alert_id, subscriber_id, status, attempts, last_reply, "
        f"updated_at) SELECT 1 + (id * 7) % ({ALERTS} - 1), id, 'sent', 1, '', {now} "
        f"FROM subscribers WHERE id % 2 = 1 AND (1 + (id * 7) % ({ALERTS} - 1)) NOT IN "
        f"(1 + (id + 1) % ({ALERTS} - 1), 1 + (id + 2) % ({ALERTS} - 1))")  # fmt: skip
    run(f"INSERT INTO clicks (alert_id, subscriber_id, link_index, clicked_at, "
        f"suspected_scanner) SELECT 1 + id % {ALERTS}, id, 0, {ago('id % 60')}, false "
        f"FROM subscribers WHERE id % 2 = 0")  # fmt: skip
    run(f"INSERT INTO signatures (uid, petition_id, email, name, country, comment, "
        f"subscriber_id, created_at, confirmed_at) SELECT {uid.replace('i::', 'id::')}, "
        f"1 + id % 2, email, 'N', 'BY', '', CASE WHEN id % 10 = 0 THEN NULL ELSE id END, "
        f"{now}, {now} FROM subscribers WHERE id % 5 = 0")  # fmt: skip
    session.commit()
    _analyze(session)


def as_a_list(session, audience: dict) -> dict:
    """A second list holding exactly the audience's readers, as a plain list: the yardstick of
    the same readers, spread over the ids as they are. (Writing readers who are neighbours
    costs less a row than writing every fifth: each ledger row goes next to the last in the
    indexes by reader, and their rows are read from fewer pages.)"""
    from clarion.alerts import campaigns
    from clarion.models import MailingList, Subscription

    same = MailingList(slug="same", name="Same", description="")
    session.add(same)
    session.flush()
    readers = campaigns.audience_query(session, audience).subquery()
    now = literal(utcnow(), Subscription.created_at.type)
    session.execute(
        insert(Subscription).from_select(
            ["subscriber_id", "list_id", "status", "created_at", "updated_at"],
            select(readers.c.id, literal(same.id), literal("subscribed"), now, now),
        )
    )
    session.commit()
    _analyze(session)
    return {"lists": [same.id]}


def _analyze(session) -> None:
    """What autovacuum and a live database's statistics would give the planner."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        session.execute(text("ANALYZE"))
        session.commit()
        return
    # Without the visibility map its index-only scans would fetch every heap row (VACUUM runs
    # outside a transaction).
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def ledger_rate(session, audience: dict) -> tuple[int, float]:
    """Readers written and readers a second when dispatch writes the audience's ledger in
    pages as a send does (id ranges growing from dispatch.FIRST_PAGE; a segment's readers
    chosen in a thread a few pages ahead, members.ReadAhead), in one transaction rolled back
    after: deleting a million ledger rows costs more than writing them."""
    from clarion.delivery import dispatch, members

    alert = Alert(kind=AlertKind.NEWSLETTER, name="L", subject="L", fields={}, audience=audience,
                  status=AlertStatus.SENDING, frozen_at=utcnow(),
                  frozen_meta={"audience": audience})  # fmt: skip
    session.add(alert)
    session.flush()
    start, written, page, after = time.perf_counter(), 0, dispatch.FIRST_PAGE, 0
    ahead = None
    if members.chooses(alert):
        ahead = members.ReadAhead(audience, 0, dispatch.FIRST_PAGE, dispatch.MAX_PAGE)
    try:
        for _ in range(1_000_000):
            chosen = ahead.next() if ahead is not None else None
            if ahead is None:
                upto = members.span_end(session, audience["lists"], after, page)
            else:
                upto = None if chosen is None else chosen.upto
            if upto is None:
                break
            written += len(dispatch._write_page(session, alert, after, upto, chosen))
            after, page = upto, min(page * 4, dispatch.MAX_PAGE)
    finally:
        if ahead is not None:
            ahead.close()
    seconds = time.perf_counter() - start
    session.rollback()
    return written, written / seconds


def _hold_autovacuum(session) -> None:
    """No autovacuum of the ledger while the runs write it (PostgreSQL): each run's rolled-back
    rows are vacuumed after it, untimed (_vacuum), rather than in the middle of the next run,
    which it slowed by a share of the two cores (seen during a run: `autovacuum: VACUUM
    public.deliveries`, after a list run left 1,000,000 dead rows)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("ALTER TABLE deliveries SET (autovacuum_enabled = off)"))
        session.commit()


def _vacuum(session) -> None:
    if session.bind.dialect.name != "postgresql":
        return
    with session.bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM deliveries"))


def _count_with_jit(session, audience: dict) -> int:
    """The count as it ran before: PostgreSQL free to JIT-compile it."""
    from clarion.alerts import campaigns

    query = select(func.count()).select_from(campaigns.audience_query(session, audience).subquery())
    return session.scalar(query)


def run(rows: int, backend: str, repeat: int) -> tuple[dict, dict, dict]:
    from bench._setup import database, timed
    from clarion.alerts import campaigns, segments
    from clarion.db import session_factory

    with database(backend) as url:
        session = session_factory(url)()
        start = time.perf_counter()
        populate(session, rows, session.bind.dialect.name)
        made = {
            t: session.scalar(select(func.count()).select_from(text(t)))
            for t in ("subscribers", "deliveries", "clicks", "signatures")
        }
        print(f"{backend}: {made} in {time.perf_counter() - start:.1f} s", flush=True)
        plain = {"lists": [1]}
        conditions = {
            "all": [
                {"type": "received", "alert": ALERTS},
                {"not": {"type": "signed", "petition": 1}},
                {"not": {"type": "inactive", "days": 30}},
            ]
        }
        segment = {"lists": [1], "conditions": segments.parse(conditions)}
        everyone = campaigns.audience_count(session, plain)
        chosen = campaigns.audience_count(session, segment)
        counts = {
            ("list", "JIT off (now)"): timed(lambda: campaigns.audience_count(session, plain)),
            ("segment", "JIT off (now)"): timed(lambda: campaigns.audience_count(session, segment)),
            ("list", "JIT allowed (before)"): timed(lambda: _count_with_jit(session, plain)),
            ("segment", "JIT allowed (before)"): timed(lambda: _count_with_jit(session, segment)),
        }  # fmt: skip
        session.rollback()
        same = as_a_list(session, segment)
        readers = {"list": everyone, "segment": chosen,
                   "same": campaigns.audience_count(session, same)}  # fmt: skip
        counts[("same", "JIT off (now)")] = timed(lambda: campaigns.audience_count(session, same))
        session.rollback()
        audiences = {"list": plain, "segment": segment, "same": same}
        # One unmeasured run of each first: the first reads after the build set hint bits and
        # load the chooser's tables (in a quiet run the segment's first rounds were 30,153 and
        # 33,555/s, its fourth and fifth 39,883 and 42,651/s; the list's 39,050 to 43,446/s).
        _hold_autovacuum(session)
        for audience in audiences.values():
            ledger_rate(session, audience)
            _vacuum(session)
        # Interleaved, so that the machine's load falls on both alike; the median.
        runs: dict[str, list[float]] = {}
        for _ in range(repeat):
            for which, audience in audiences.items():
                rate = ledger_rate(session, audience)[1]
                _vacuum(session)
                runs.setdefault(which, []).append(rate)
                print(f"  {which}: {rate:,.0f} readers/s", flush=True)
        rates = {key: statistics.median(values) for key, values in runs.items()}
        session.close()
    return readers, counts, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", action="append", choices=["postgresql", "sqlite"])
    parser.add_argument("--repeat", type=int, default=3, help="ledger runs of each writer")
    args = parser.parse_args()
    for backend in args.backend or ["postgresql", "sqlite"]:
        readers, counts, rates = run(args.rows, backend, args.repeat)
        print(f"\n| {backend}, {args.rows:,} subscribers | the list | three conditions "
              "| the same readers as a list |")  # fmt: skip
        print("|---|---:|---:|---:|")
        print(f"| readers | {readers['list']:,} | {readers['segment']:,} | {readers['same']:,} |")
        for how in ("JIT allowed (before)", "JIT off (now)"):
            same = f"{counts[('same', how)]:.0f}" if ("same", how) in counts else ""
            print(f"| count (ms), {how} | {counts[('list', how)]:.0f} "
                  f"| {counts[('segment', how)]:.0f} | {same} |")  # fmt: skip
        segment_rate = rates["segment"]
        against = " · ".join(f"{segment_rate / rates[k] - 1:+.0%} against {k}"
                             for k in ("list", "same"))  # fmt: skip
        print(f"| ledger, readers/s | {rates['list']:,.0f} | {segment_rate:,.0f} ({against}) "
              f"| {rates['same']:,.0f} |")  # fmt: skip
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")


if __name__ == "__main__":
    main()
