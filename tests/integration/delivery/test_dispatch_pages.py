"""Dispatch's pages are ranges of subscriber ids: gaps and ranges that yield nobody do not end
it, readers who join meanwhile are taken, and a dispatch stopped between pages and run again
writes every reader of the audience exactly once, with every row in one batch."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text, update

from clarion import jobqueue
from clarion.alerts import segments
from clarion.audience import erasure
from clarion.db import session_scope
from clarion.delivery import dispatch, members, sending
from clarion.models import (
    Alert,
    AlertAudience,
    Delivery,
    DeliveryBatch,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from tests.helpers import refresh
from tests.sendkit import InlineQueue, make_alert, make_audience, make_list

PAGE = 3  # readers of the list a page holds: many pages from a few readers


@pytest.fixture
def queue():
    """Tasks dispatch publishes (batches to send) are kept, not run."""
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(dispatch, "FIRST_PAGE", PAGE)
    monkeypatch.setattr(dispatch, "MAX_PAGE", PAGE)


def far_readers(session, mailing_list, first_id: int, count: int) -> list[int]:
    """`count` readers on the list with ids from `first_id`: a big gap in the ids before them."""
    ids = list(range(first_id, first_id + count))
    session.execute(
        insert(Subscriber),
        [{"id": i, "uid": f"far{i}", "email": f"far{i}@example.org", "name": "F"} for i in ids],
    )
    session.execute(
        insert(Subscription),
        [{"subscriber_id": i, "list_id": mailing_list.id, "status": "subscribed"} for i in ids],
    )
    if session.bind.dialect.name == "postgresql":  # readers made later come after them
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :last)"),
            {"last": ids[-1]},
        )
    session.commit()
    return ids


def speak(session, ids: list[int], language: str) -> None:
    session.execute(update(Subscriber).where(Subscriber.id.in_(ids)).values(language=language))
    session.commit()


def start(session, alert: Alert) -> Alert:
    sending.start(session, alert)
    session.commit()
    return alert


def in_ledger(session, alert_id: int) -> list[int]:
    """The ledger's readers, sorted, with repeats if any."""
    refresh(session)
    return sorted(
        session.scalars(select(Delivery.subscriber_id).where(Delivery.alert_id == alert_id))
    )


def assert_batched_once(session, alert_id: int) -> None:
    """Every ledger row lies in exactly one batch range, and the alert counts each once."""
    refresh(session)
    rows = session.scalars(select(Delivery.id).where(Delivery.alert_id == alert_id)).all()
    ranges = session.execute(
        select(DeliveryBatch.first_id, DeliveryBatch.last_id).where(
            DeliveryBatch.alert_id == alert_id
        )
    ).all()
    assert all(sum(lo <= row <= hi for lo, hi in ranges) == 1 for row in rows)
    assert session.get(Alert, alert_id).recipients == len(rows)


def language_alert(session, lists, language: str) -> Alert:
    tree = segments.parse({"all": [{"type": "language", "languages": [language]}]})
    audience = {"lists": [ml.id for ml in lists], "conditions": tree}
    return start(session, make_alert(session, lists, audience=audience))


def test_a_list_with_big_gaps_in_its_ids_is_written_whole(session, queue, small_pages):
    news, other = make_list(session, "news"), make_list(session, "other")
    first = make_audience(session, news, 7, prefix="a")
    make_audience(session, other, 20, prefix="o")  # a gap of other readers in the ids
    then = make_audience(session, news, 2, prefix="b")
    far = far_readers(session, news, 1_000_000, 4)
    both = make_audience(session, other, 5, prefix="c")  # readers of both lists
    session.execute(
        insert(Subscription),
        [{"subscriber_id": i, "list_id": news.id, "status": "subscribed"} for i in both],
    )
    left = make_audience(session, news, 1, prefix="gone")
    session.execute(
        update(Subscription)
        .where(Subscription.subscriber_id.in_(left))
        .values(status=SubscriptionStatus.UNSUBSCRIBED)
    )
    session.commit()
    alert = start(session, make_alert(session, [news, other]))

    written = dispatch.dispatch(alert.id)

    everyone = sorted(
        session.scalars(
            select(Subscription.subscriber_id)
            .where(Subscription.status == SubscriptionStatus.SUBSCRIBED)
            .distinct()
        )
    )
    assert {*first, *then, *far, *both} <= set(everyone)
    assert in_ledger(session, alert.id) == everyone and written == len(everyone)
    assert session.get(Alert, alert.id).dispatched_at is not None
    assert_batched_once(session, alert.id)


def test_a_segment_whose_first_ranges_select_nobody_reaches_the_readers_after_them(
    session, queue, small_pages
):
    news = make_list(session, "news")
    english = make_audience(session, news, 10, prefix="en")  # four ranges that yield nobody
    polish = make_audience(session, news, 2, prefix="pl")
    far_polish = far_readers(session, news, 500_000, 2)  # after a gap, again
    speak(session, english, "en")
    speak(session, [*polish, *far_polish], "pl")
    alert = language_alert(session, [news], "pl")

    assert dispatch.dispatch(alert.id) == 4

    assert in_ledger(session, alert.id) == sorted([*polish, *far_polish])
    assert session.get(Alert, alert.id).dispatched_at is not None
    assert_batched_once(session, alert.id)


@pytest.mark.parametrize("when", ["early", "late"])
def test_readers_who_join_during_the_dispatch_are_written_too(
    session, queue, small_pages, monkeypatch, when
):
    news = make_list(session, "news")
    readers = make_audience(session, news, 7)
    alert = start(session, make_alert(session, [news]))
    remember, joined = dispatch.linkmap.remember_deliveries, []

    def join_after_the_first_pages(alert_id, ids):
        remember(alert_id, ids)
        if not joined:  # between two pages, as readers sign up on the site
            with session_scope() as other:
                joined.extend(make_audience(other, other.get(type(news), news.id), 2, "new"))

    def join_after_the_last_page(alert_id, ids):
        remember(alert_id, ids)
        if not joined and readers[-1] in in_ledger(session, alert_id):
            with session_scope() as other:  # once the readers there were at the start are in
                joined.extend(make_audience(other, other.get(type(news), news.id), 2, "new"))

    hook = join_after_the_first_pages if when == "early" else join_after_the_last_page
    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", hook)
    dispatch.dispatch(alert.id)

    assert joined and in_ledger(session, alert.id) == sorted([*readers, *joined])
    assert_batched_once(session, alert.id)


class Crash(Exception):
    """The worker died between two pages."""


def crash_after_two_pages(monkeypatch):
    """Make dispatch die after its second page is written; gives back what it replaced."""
    remember, pages = dispatch.linkmap.remember_deliveries, []

    def die_after_two_pages(alert_id, ids):
        remember(alert_id, ids)
        pages.append(ids)
        if len(pages) == 2:
            raise Crash

    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", die_after_two_pages)
    return remember


@pytest.mark.parametrize("audience", ["list", "segment"])
def test_a_dispatch_stopped_between_pages_and_run_again_writes_each_reader_once(
    session, queue, small_pages, monkeypatch, audience
):
    news, other = make_list(session, "news"), make_list(session, "other")
    readers = make_audience(session, news, 8, prefix="a")
    make_audience(session, other, 10, prefix="o")
    readers += make_audience(session, news, 6, prefix="b")
    readers += far_readers(session, news, 300_000, 3)
    if audience == "segment":  # the English ones only, paged over as they were listed
        speak(session, readers[:5], "pl")
        speak(session, readers[5:], "en")
        readers = readers[5:]
        alert = language_alert(session, [news], "en")
    else:
        alert = start(session, make_alert(session, [news]))
    crash_after_two_pages(monkeypatch)
    with pytest.raises(Crash):
        dispatch.dispatch(alert.id)
    refresh(session)
    assert session.get(Alert, alert.id).dispatched_at is None
    assert 0 < len(in_ledger(session, alert.id)) < len(readers)

    dispatch.dispatch(alert.id)  # the sweep enqueues it again; it carries on from the ledger

    assert in_ledger(session, alert.id) == sorted(readers)
    assert session.get(Alert, alert.id).dispatched_at is not None
    assert_batched_once(session, alert.id)
    # A third call (a stale task delivered twice) writes nothing more.
    assert dispatch.dispatch(alert.id) == 0
    count = select(func.count()).select_from(Delivery).where(Delivery.alert_id == alert.id)
    assert session.scalar(count) == len(readers)


def listed(session, alert_id: int) -> list[int]:
    """The readers listed for a segment send (clarion.delivery.members), sorted."""
    refresh(session)
    query = select(AlertAudience.subscriber_id).where(AlertAudience.alert_id == alert_id)
    return sorted(session.scalars(query))


def test_a_segment_send_lists_its_readers_once_and_pages_over_them(
    session, queue, small_pages, monkeypatch
):
    news = make_list(session, "news")
    readers = make_audience(session, news, 10)
    speak(session, readers[:4], "pl")
    speak(session, readers[4:], "en")
    alert = language_alert(session, [news], "en")
    remember, seen = dispatch.linkmap.remember_deliveries, []

    def look(alert_id, ids):
        remember(alert_id, ids)
        seen.append(listed(session, alert_id))
        speak(session, readers[:4], "en")  # they meet the conditions only after the start

    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", look)
    assert dispatch.dispatch(alert.id) == 6

    assert seen[0] == readers[4:]  # listed when dispatch began, before the first page
    assert in_ledger(session, alert.id) == readers[4:]
    assert listed(session, alert.id) == []  # gone with the last page
    assert_batched_once(session, alert.id)


def test_a_listed_reader_who_leaves_before_their_page_is_not_written(
    session, queue, small_pages, monkeypatch
):
    news = make_list(session, "news")
    readers = make_audience(session, news, 9)
    speak(session, readers, "en")
    alert = language_alert(session, [news], "en")
    gone, suppressed = readers[-2], readers[-1]
    remember, left = dispatch.linkmap.remember_deliveries, []

    def leave_after_the_first_page(alert_id, ids):
        remember(alert_id, ids)
        if left or gone not in listed(session, alert_id):
            return
        left.append(gone)
        with session_scope() as other:  # listed at the start; their page is still to come
            other.execute(
                update(Subscription)
                .where(Subscription.subscriber_id == gone)
                .values(status=SubscriptionStatus.UNSUBSCRIBED)
            )
            email = other.get(Subscriber, suppressed).email
            other.add(Suppression(email=email, reason="hard_bounce"))

    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", leave_after_the_first_page)
    dispatch.dispatch(alert.id)

    assert left and in_ledger(session, alert.id) == readers[:-2]
    assert_batched_once(session, alert.id)


def test_a_segment_dispatch_that_starts_again_keeps_its_list_and_writes_no_one_twice(
    session, queue, small_pages, monkeypatch
):
    news = make_list(session, "news")
    readers = make_audience(session, news, 12)
    speak(session, readers, "en")
    alert = language_alert(session, [news], "en")
    remember = crash_after_two_pages(monkeypatch)
    with pytest.raises(Crash):
        dispatch.dispatch(alert.id)
    refresh(session)
    first_listed = session.get(Alert, alert.id).frozen_meta.get("listed_at")
    assert first_listed is not None and listed(session, alert.id) == readers
    speak(session, readers[-3:], "pl")  # no longer chosen, but listed at the start
    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", remember)

    dispatch.dispatch(alert.id)

    refresh(session)
    assert session.get(Alert, alert.id).frozen_meta["listed_at"] == first_listed  # not anew
    assert in_ledger(session, alert.id) == readers  # each once
    assert_batched_once(session, alert.id)
    assert listed(session, alert.id) == []


def test_cancelling_a_segment_send_forgets_its_listed_readers(session, queue, small_pages):
    news = make_list(session, "news")
    readers = make_audience(session, news, 5)
    speak(session, readers, "en")
    alert = language_alert(session, [news], "en")
    dispatch._list_readers(alert.id)
    assert listed(session, alert.id) == readers

    sending.cancel(session, session.get(Alert, alert.id))
    session.commit()

    assert listed(session, alert.id) == []
    assert dispatch.dispatch(alert.id) == 0 and in_ledger(session, alert.id) == []


def test_a_follow_up_to_the_unreached_of_a_segment_send_lists_its_own_readers(
    session, queue, small_pages
):
    news = make_list(session, "news")
    readers = make_audience(session, news, 7)
    speak(session, readers, "en")
    alert = language_alert(session, [news], "en")
    assert dispatch.dispatch(alert.id) == 7
    session.execute(  # all but two were sent; the rest failed
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.subscriber_id.in_(readers[:5]))
        .values(status="sent")
    )
    session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.subscriber_id.in_(readers[5:]))
        .values(status="failed")
    )
    session.execute(update(Alert).where(Alert.id == alert.id).values(status="sent"))
    session.commit()
    refresh(session)

    follow_up = sending.send_to_unreached(session, session.get(Alert, alert.id))
    session.commit()
    assert dispatch.dispatch(follow_up.id) == 2

    assert in_ledger(session, follow_up.id) == readers[5:]
    assert listed(session, follow_up.id) == []


def test_an_erased_reader_leaves_the_list_and_a_new_reader_with_their_id_is_not_sent_to(
    session, queue, small_pages
):
    # SQLite gives the highest id again once its row is gone: a reader who signs up after the
    # last listed one was erased must not inherit the place (the listing has no foreign key).
    news = make_list(session, "news")
    readers = make_audience(session, news, 6)
    speak(session, readers, "en")
    alert = language_alert(session, [news], "en")
    assert members.list_readers(session, session.get(Alert, alert.id))
    session.commit()
    erasure.erase_reader(session, session.get(Subscriber, readers[-1]))
    session.commit()
    assert listed(session, alert.id) == readers[:-1]
    newcomer = make_audience(session, news, 1, prefix="n")
    speak(session, newcomer, "en")

    dispatch.dispatch(alert.id)

    assert in_ledger(session, alert.id) == readers[:-1]
    assert newcomer[0] not in in_ledger(session, alert.id)
