"""Subscriber list pages at a million rows: keyset paging (ours) against OFFSET paging.

    .venv/bin/python -m bench.paging [--rows 1000000] [--backend postgresql|sqlite]

Each line times the admin's own query (clarion.audience.directory.page) and, as the baseline in the
same run on the same data, the same filter paged with OFFSET to the same depth.
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import func, select, text

NAMES = ("бяляцкі", "kalesnikava", "losik")


def populate(session, rows: int, dialect: str) -> None:
    """rows subscribers; list 1: every 2nd subscribed; list 2: every 3rd, status by i % 7;
    tag 1 on every 10th; names 'Name<i % 5000> <surname>' in three scripts."""
    series = (
        f"generate_series(1, {rows}) AS s(i)"
        if dialect == "postgresql"
        else f"(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) "
        "SELECT i FROM c) AS s"
    )
    uid = "md5(i::text)" if dialect == "postgresql" else "hex(randomblob(16))"
    surname = "CASE i % 3 WHEN 0 THEN 'Бяляцкі' WHEN 1 THEN 'Kalesnikava' ELSE 'Losik' END"
    lower = "CASE i % 3 WHEN 0 THEN 'бяляцкі' WHEN 1 THEN 'kalesnikava' ELSE 'losik' END"
    now = "CURRENT_TIMESTAMP"
    session.execute(
        text(
            "INSERT INTO lists (slug, name, description, is_public, created_at) VALUES "
            f"('one', 'One', '', true, {now}), ('two', 'Two', '', true, {now})"
        )
    )
    session.execute(text("INSERT INTO tags (name) VALUES ('minsk')"))
    session.execute(
        text(
            "INSERT INTO subscribers (uid, email, name, name_search, language, source, "
            "created_at, updated_at) "
            f"SELECT {uid}, 'user' || i || '@mail' || (i % 100) || '.example.org', "
            f"'Name' || (i % 5000) || ' ' || {surname}, 'name' || (i % 5000) || ' ' || {lower}, "
            f"'en', 'bench', {now}, {now} FROM {series}"
        )
    )
    session.execute(
        text(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
            f"SELECT id, 1, 'subscribed', {now}, {now} FROM subscribers WHERE id % 2 = 0"
        )
    )
    session.execute(
        text(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
            "SELECT id, 2, CASE id % 7 WHEN 0 THEN 'unsubscribed' WHEN 1 THEN 'pending' "
            f"ELSE 'subscribed' END, {now}, {now} FROM subscribers WHERE id % 3 = 0"
        )
    )
    session.execute(
        text(
            "INSERT INTO subscriber_tags (subscriber_id, tag_id) "
            "SELECT id, 1 FROM subscribers WHERE id % 10 = 0"
        )
    )
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()


def key_at_depth(session, f, depth: int) -> int | None:
    """The paging key of the row `depth` rows down the list (where a reader who clicked on
    depth/50 times would be)."""
    from clarion.audience import directory

    query, keys = directory.filtered(f)
    order = keys[0]
    return session.scalar(
        query.with_only_columns(order).order_by(order.desc()).offset(depth).limit(1)
    )


def measure(session, label: str, f, depth: int) -> tuple[str, float, float, float]:
    """The page's main query by keyset and by OFFSET, and the whole page as the admin builds it."""
    from bench._setup import timed
    from clarion.audience import directory
    from clarion.paging import PAGE_SIZE

    after = key_at_depth(session, f, depth - 1) if depth else None
    query, keys = directory.filtered(f)
    keyset = query.order_by(keys[0].desc()).limit(PAGE_SIZE + 1)
    if after is not None:
        keyset = keyset.where(*(k < after for k in keys))
    offset = query.order_by(keys[0].desc()).offset(depth).limit(PAGE_SIZE + 1)
    ours = timed(lambda: session.execute(keyset).scalars().all())
    baseline = timed(lambda: session.execute(offset).scalars().all())
    whole = timed(lambda: directory.page(session, f, after=after))
    got = [r.subscriber.id for r in directory.page(session, f, after=after).items]
    expected = [s.id for s in session.execute(offset).scalars().all()][:PAGE_SIZE]
    assert got == expected, label  # both ways show the same page
    print(
        f"  {label:40} keyset {ours:7.1f} ms  OFFSET {baseline:7.1f} ms  page {whole:7.1f} ms",
        flush=True,
    )
    return label, ours, baseline, whole


def run(rows: int, backend: str) -> list[tuple[str, float, float, float]]:
    from bench._setup import database
    from clarion.audience import directory
    from clarion.db import session_factory
    from clarion.paging import PAGE_SIZE

    results = []
    with database(backend) as url:
        session = session_factory(url)()
        start = time.perf_counter()
        populate(session, rows, session.bind.dialect.name)
        total = session.scalar(select(func.count()).select_from(text("subscribers")))
        print(
            f"{backend}: {total} subscribers made in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        F = directory.SubscriberFilter
        cases = [
            ("everyone, first page", F(), 0),
            ("everyone, page 10,000 (row 500,000)", F(), rows // 2),
            ("everyone, last page", F(), rows - PAGE_SIZE),
            ("list 1, page 5,000", F(list_id=1), rows // 4),
            ("list 2 pending, deep", F(list_id=2, status="pending"), rows // 42),
            ("unsubscribed on any list, deep", F(status="unsubscribed"), rows // 42),
            ("tag, page 1,000", F(tag_id=1), rows // 20),
            ("list 1 with tag, deep", F(list_id=1, tag_id=1), rows // 40),
            (
                "search a whole address",
                F(q=f"user{rows // 2}@mail{rows // 2 % 100}.example.org"),
                0,
            ),
            ("search a rare name (200 matches)", F(q="name4242 "), 0),
            ("search a common word (1 in 3)", F(q="kalesnikava"), 0),
            ("search a common word, deep", F(q="kalesnikava"), rows // 6),
        ]
        for label, f, depth in cases:
            results.append(measure(session, label, f, depth))
        session.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", action="append", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    for backend in args.backend or ["postgresql", "sqlite"]:
        results = run(args.rows, backend)
        print(
            f"\n| {backend}, {args.rows:,} subscribers | keyset query (ms) | OFFSET query (ms) "
            "| whole page, keyset (ms) |"
        )
        print("|---|---:|---:|---:|")
        for label, ours, baseline, whole in results:
            print(f"| {label} | {ours:.1f} | {baseline:.1f} | {whole:.1f} |")
        print()


if __name__ == "__main__":
    main()
