"""The flush under fire: many clickers and several flushers at once lose no click, double none."""

from __future__ import annotations

import random
import threading
from collections import Counter

from sqlalchemy import func, select

from clarion.models import Click
from clarion.tracking import eventstream
from tests.helpers import refresh
from tests.integration.alertkit import frozen_alert, make_readers, token_of

CLICKERS = 6
CLICKS_EACH = 150
FLUSHERS = 3


def test_concurrent_clicks_and_flushes_lose_nothing_and_double_nothing(app, session):
    readers = make_readers(session, 40)
    links = [f"https://blog.example.org/{i}" for i in range(4)]
    _alert, deliveries = frozen_alert(session, links, readers)
    tokens = [(d.id, token_of(d)) for d in deliveries]
    clicked: Counter[tuple[int, int]] = Counter()
    lock = threading.Lock()
    failures: list[str] = []
    clicking = threading.Event()
    clicking.set()
    flushed_while_clicking: list[int] = []

    def clicker(seed: int) -> None:
        rng = random.Random(seed)
        client = app.test_client()
        mine: Counter[tuple[int, int]] = Counter()
        for _ in range(CLICKS_EACH):
            delivery_id, token = rng.choice(tokens)
            n = rng.randrange(len(links))
            response = client.get(f"/r/{token}/{n}")
            if response.status_code != 302:
                failures.append(f"{response.status_code} for {delivery_id}/{n}")
            mine[(delivery_id, n)] += 1
        with lock:
            clicked.update(mine)

    def flusher() -> None:
        # claim_idle_ms=0: flushers also steal each other's in-flight entries, the worst case.
        try:
            while clicking.is_set():
                result = eventstream.flush(claim_idle_ms=0, max_batches=5)
                with lock:
                    flushed_while_clicking.append(result.events)
        except Exception as exc:  # surfaced below; a dead thread must fail the test
            failures.append(repr(exc))

    clickers = [threading.Thread(target=clicker, args=(i,)) for i in range(CLICKERS)]
    flushers = [threading.Thread(target=flusher) for _ in range(FLUSHERS)]
    for thread in flushers + clickers:
        thread.start()
    for thread in clickers:
        thread.join(120)
    clicking.clear()
    for thread in flushers:
        thread.join(120)
    eventstream.flush(claim_idle_ms=0)

    assert failures == []
    assert sum(flushed_while_clicking) > 0  # the flushers really ran amid the clicks
    total = CLICKERS * CLICKS_EACH
    assert sum(clicked.values()) == total
    assert eventstream.backlog() == 0
    refresh(session)
    assert session.scalar(select(func.count()).select_from(Click)) == total
    assert session.scalar(select(func.count(func.distinct(Click.event_id)))) == total
    stored = Counter(
        (delivery_id, n)
        for delivery_id, n in session.execute(select(Click.delivery_id, Click.link_index))
    )
    assert stored == clicked
