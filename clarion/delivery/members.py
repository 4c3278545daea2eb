"""Who each ledger page of a send holds: a range of the lists' readers, and for a segment send
the readers its conditions chose in that range, a little ahead of the writer.

A list send's page is the range of subscriber ids holding the next so many readers of its lists
(span_end). A send whose audience has conditions (clarion.alerts.segments) has its readers
chosen range by range in a thread beside dispatch, on a connection of its own (ReadAhead), at
most AHEAD pages before dispatch writes them; dispatch writes each page from the ids chosen for
it as they are (the batch checks lists and suppression again when it sends, as for every
reader), so the work of choosing is all in the thread. Choosing and writing run at once, on two
cores: the ledger of a segment goes in at about the rate of a plain list of the same readers
(bench/README.md, Segments), where listing every reader first cost a third more time, and
evaluating the conditions inside each page's INSERT more still.

Nothing is stored: a dispatch that stops and starts again carries on from the ledger, as a
list's does, and chooses the rest then. A reader is judged when their range is chosen, a few
pages before being written: one who meets the conditions by then is taken (as a list send takes
readers who join meanwhile), one who no longer does (signed meanwhile, say) is not, and one who
leaves the lists after that is skipped when the batch sends. The statement is built once when
choosing begins (a window such as "the last 30 days" counts from then) and run for each span.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from clarion.alerts import campaigns, segments
from clarion.db import among, session_factory, set_based, utcnow
from clarion.models import Alert, AlertRole, Subscriber, Subscription, SubscriptionStatus

CHOOSE_SPAN = 100_000  # readers of the lists one choosing statement judges, at most
# SQLite probes indexes reader by reader: a span costs in proportion to its readers, so spans
# of a few pages keep the chooser's work beside the writer's, where spans of 100,000 left the
# writer waiting for one span while it had only the last one's few ids to write.
SQLITE_CHOOSE_SPAN = 16_000
AHEAD = 2  # chosen pages waiting for the writer: bounds memory, and how early a reader is judged
_WAIT = 0.1  # seconds between looks at the stop flag while the writer has AHEAD pages

# Welcome mails and series steps are written reader by reader as they come, not by dispatch.
_OPEN_ROLES = (AlertRole.WELCOME.value, AlertRole.SERIES_STEP.value)


def span_end(session: Session, lists: list[int], after: int, size: int) -> int | None:
    """The last subscriber id of the next span, so that (after, end] holds about `size` readers
    of the lists: the id of each list's size-th subscribed reader above `after` (an index-only
    scan of ix_subscriptions_audience), the lowest of them; a list with fewer left lets the
    others decide. None when no reader of the lists is left above `after`.

    Ids, not a LIMIT: each page's joins (clicks, signatures, the ledger) then read only its
    range, where a keyset page built them over the whole tables again (bench/README.md)."""
    member = [
        Subscription.status == SubscriptionStatus.SUBSCRIBED,
        Subscription.subscriber_id > after,
    ]
    ends = [
        session.scalar(
            select(Subscription.subscriber_id)
            .where(Subscription.list_id == list_id, *member)
            .order_by(Subscription.subscriber_id)
            .offset(size - 1)
            .limit(1)
        )
        for list_id in lists
    ]
    full = [end for end in ends if end is not None]
    if full:
        return min(full)
    # Every list has fewer than `size` readers left: the last span takes them all.
    return session.scalar(
        select(func.max(Subscription.subscriber_id)).where(Subscription.list_id.in_(lists), *member)
    )


def in_range(session: Session, audience: dict[str, Any], after: Any, upto: Any) -> Select:
    """The audience's subscriber ids in (after, upto], unordered; every condition's subquery
    reads only that range (segments.page_of). The bounds are ids or bound parameters."""
    with segments.page_of(after, upto):
        query = campaigns.audience_query(session, audience)
    return query.where(Subscriber.id > after, Subscriber.id <= upto)


def chooses(alert: Alert) -> bool:
    """Whether dispatch writes the alert's ledger from readers its conditions chose."""
    audience = (alert.frozen_meta or {}).get("audience") or {}
    return bool(audience.get("conditions")) and alert.role not in _OPEN_ROLES


@dataclass(frozen=True)
class Page:
    """The readers chosen in the id range (after, upto], and when: one page of the ledger."""

    after: int
    upto: int
    ids: list[int]
    chosen_at: datetime


def chosen_ids(session: Session, page: Page, after: int) -> Select:
    """The page's readers above `after` who still exist. Nothing else is checked again here:
    the batch checks lists and suppression when it sends."""
    in_page = [Subscriber.id > after, Subscriber.id <= page.upto]
    if session.get_bind().dialect.name == "sqlite":
        # One JSON text, not a placeholder per id (a page holds up to 20,000). SQLite gives an
        # erased reader's highest id to the next new reader, who was not chosen: only readers
        # who existed when the page was chosen.
        ids = select(literal_column("value")).select_from(func.json_each(json.dumps(page.ids)))
        return select(Subscriber.id).where(
            Subscriber.id.in_(ids), Subscriber.created_at <= page.chosen_at, *in_page
        )
    # A sequence never gives an id twice: the id alone, an index-only scan of the key.
    return select(Subscriber.id).where(among(session, Subscriber.id, page.ids), *in_page)


def pages(
    session: Session, audience: dict[str, Any], after: int, first: int, largest: int
) -> Iterator[Page]:
    """The audience's readers above `after`, chosen span by span (spans of the lists' readers
    from `first` growing to CHOOSE_SPAN, on SQLite to SQLITE_CHOOSE_SPAN), as pages of at most
    `largest` ids in id order."""
    span, query = first, None
    while True:
        end = span_end(session, audience["lists"], after, span)
        if end is None:
            return
        chosen_at = utcnow()
        # Serial: it runs beside the writer on purpose, and one core keeps well ahead of it.
        with set_based(session, parallel=False):
            if query is None:
                query = _choosing(session, audience)
            ids = _chosen(session, query, {"span_after": after, "span_end": end})
        session.rollback()  # the next span sees what is committed by then
        yield from _split(after, end, ids, largest, chosen_at)
        after, span = end, min(span * 4, _largest_span(session))


def _largest_span(session: Session) -> int:
    if session.get_bind().dialect.name == "sqlite":
        return min(CHOOSE_SPAN, SQLITE_CHOOSE_SPAN)
    # PostgreSQL builds each statement's hashes (of clickers, signers) anew: few, large spans.
    return CHOOSE_SPAN


def _choosing(session: Session, audience: dict[str, Any]) -> Select:
    # Built once for all spans, the span's bounds given when it runs: building it took ~2.5 ms
    # of the interpreter a span, which the writer's thread waits for.
    query = in_range(session, audience, bindparam("span_after"), bindparam("span_end"))
    if session.get_bind().dialect.name == "sqlite":
        # The span's ids as one JSON array, one step of the statement: Python's sqlite3 lets
        # other threads run during a step, and row by row the chooser took the interpreter back
        # for each of its ids, in turn with the writer's own rows (99-104k readers/s against
        # 128-151k/s with the one array; bench/README.md, Segments).
        chosen = query.subquery()
        return select(func.json_group_array(chosen.c.id)).select_from(chosen)
    return query


def _chosen(session: Session, query: Select, span: dict[str, int]) -> list[int]:
    if session.get_bind().dialect.name == "sqlite":
        return sorted(json.loads(session.scalar(query, span)))
    return sorted(session.scalars(query, span))


def _split(after: int, end: int, ids: list[int], largest: int, at: datetime) -> Iterator[Page]:
    # Each page ends at its last id, the span's last page at the span's end (even when empty,
    # so that the writer's cursor passes ranges that chose nobody).
    for start in range(0, max(len(ids), 1), largest):
        part = ids[start : start + largest]
        upto = end if start + largest >= len(ids) else part[-1]
        yield Page(after, upto, part, at)
        after = upto


class ReadAhead:
    """A segment send's pages chosen in a thread on a session of its own, AHEAD pages ahead of
    the writer, which takes them in order with next() and calls close() when it stops."""

    def __init__(self, audience: dict[str, Any], after: int, first: int, largest: int) -> None:
        self._pages: queue.Queue[Page | BaseException | None] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(
            target=self._choose,
            args=(audience, after, first, largest),
            name="clarion-read-ahead",
            daemon=True,
        )
        self._thread.start()

    def next(self) -> Page | None:
        """The next page, waiting for it to be chosen; None when no reader is left."""
        if self._ended:
            return None
        item = self._pages.get()
        if item is None or isinstance(item, BaseException):
            self._ended = True
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop choosing and wait for the thread (it ends within a span's query)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # room for a page the thread hands over
                self._pages.get(timeout=_WAIT)
        self._thread.join()

    def _choose(self, audience: dict[str, Any], after: int, first: int, largest: int) -> None:
        try:
            with session_factory(reader=True)() as session:  # SQLite: no write lock taken
                for page in pages(session, audience, after, first, largest):
                    if not self._hand_over(page):
                        return
            self._hand_over(None)
        except BaseException as error:  # the writer raises it in its own thread
            self._hand_over(error)

    def _hand_over(self, item: Page | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=_WAIT)
                return True
            except queue.Full:
                continue
        return False
