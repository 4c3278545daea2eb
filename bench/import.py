"""CSV import speed: 100,000 rows into PostgreSQL (and SQLite) with clarion.audience.imports,
against the obvious row-by-row ORM import measured in the same run.

    .venv/bin/python bench/import.py [--rows 100000] [--baseline-rows 10000] [--backend ...]

Both paths do the same work per row: validate the address, look for it in the database,
create the subscriber, its subscription and its consent record.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SURNAMES = ("Бяляцкі", "Kalesnikava", "Losik", "García", "Müller")


def make_csv(rows: int) -> bytes:
    """A realistic export: names in several scripts, tags, a consent column, 0.5% bad
    addresses and 0.5% duplicates."""
    lines = ["email,name,language,tags,consent"]
    for i in range(rows):
        email = f"person{i}@example{i % 50}.org"
        if i % 200 == 7:
            email = f"broken{i}.example.org"
        if i % 200 == 11:
            email = f"person{i - 1}@example{(i - 1) % 50}.org"
        tags = "minsk;volunteer" if i % 10 == 0 else ""
        consent = "yes" if i % 3 else "no"
        lines.append(
            f"{email},Name{i} {SURNAMES[i % 5]},{'be' if i % 4 else 'en'},{tags},{consent}"
        )
    return ("\n".join(lines) + "\n").encode()


def ours(data: bytes, list_id: int) -> tuple[float, dict]:
    from clarion.audience import imports
    from clarion.db import session_factory

    session = session_factory()()
    start = time.perf_counter()
    found = imports.preview(data)
    options = imports.ImportOptions(
        "bench.csv", [list_id], found.mapping, found.encoding, found.delimiter, found.has_header
    )
    job = imports.upload(session, None, data, "bench.csv")
    imports.configure(session, job, options)
    session.commit()
    for _ in imports.run_import(session, job):
        session.commit()
    elapsed = time.perf_counter() - start
    counts = {"rows": job.total, "created": job.created, "rejected": job.rejected}
    session.close()
    return elapsed, counts


def baseline(data: bytes, list_id: int, rows: int) -> float:
    """The obvious way: csv.DictReader, one ORM object at a time, a flush per row for ids."""
    import csv
    import io

    from email_validator import EmailNotValidError, validate_email
    from sqlalchemy import select

    from clarion.db import session_factory, utcnow
    from clarion.models import ConsentRecord, Subscriber, Subscription, SubscriptionStatus

    session = session_factory()()
    start = time.perf_counter()
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    for n, row in enumerate(reader):
        if n == rows:
            break
        try:
            email = validate_email(row["email"], check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            continue
        if session.scalar(select(Subscriber.id).where(Subscriber.email == email)) is not None:
            continue
        consent = row["consent"] == "yes"
        subscriber = Subscriber(email=email, name=row["name"], language=row["language"])
        session.add(subscriber)
        session.flush()
        status = SubscriptionStatus.SUBSCRIBED if consent else SubscriptionStatus.PENDING
        session.add(Subscription(subscriber_id=subscriber.id, list_id=list_id, status=status))
        session.add(
            ConsentRecord(
                subscriber_id=subscriber.id,
                action="import",
                list_ids=[list_id],
                confirmed_at=utcnow() if consent else None,
            )
        )
        session.flush()
    session.commit()
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed


def run(backend: str, rows: int, baseline_rows: int) -> dict:
    from bench._setup import database
    from clarion.db import session_factory
    from clarion.models import MailingList

    data = make_csv(rows)
    with database(backend):
        session = session_factory()()
        lists = [MailingList(slug=f"l{i}", name=f"List {i}") for i in range(2)]
        session.add_all(lists)
        session.commit()
        ids = [ml.id for ml in lists]
        session.close()
        took, counts = ours(data, ids[0])
        slow = baseline(make_csv(baseline_rows), ids[1], baseline_rows)
    result = {
        "backend": backend,
        "rows": rows,
        "ours_s": took,
        "ours_rate": rows / took,
        "baseline_rows": baseline_rows,
        "baseline_s": slow,
        "baseline_rate": baseline_rows / slow,
        **counts,
    }
    print(
        f"{backend}: ours {rows:,} rows in {took:.1f} s ({rows / took:,.0f} rows/s; "
        f"{counts['created']:,} created, {counts['rejected']:,} rejected); "
        f"row-by-row ORM {baseline_rows:,} rows in {slow:.1f} s "
        f"({baseline_rows / slow:,.0f} rows/s, "
        f"{rows / (baseline_rows / slow):.0f} s projected for {rows:,})",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=10_000)
    parser.add_argument("--backend", action="append", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    results = [
        run(b, args.rows, args.baseline_rows) for b in args.backend or ["postgresql", "sqlite"]
    ]
    print("\n| backend | clarion.audience.imports | rows/s | row-by-row ORM (baseline) | rows/s |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        projected = r["rows"] / r["baseline_rate"]
        print(
            f"| {r['backend']} | {r['rows']:,} rows in {r['ours_s']:.1f} s | {r['ours_rate']:,.0f} "
            f"| {r['baseline_rows']:,} rows in {r['baseline_s']:.1f} s (≈ {projected:.0f} s "
            f"for {r['rows']:,}) | {r['baseline_rate']:,.0f} |"
        )


if __name__ == "__main__":
    main()
