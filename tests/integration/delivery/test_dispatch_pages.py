"""Dispatch's pages are ranges of subscriber ids: gaps and ranges that yield nobody do not end
it, readers who join meanwhile are taken, and a dispatch stopped between pages and run again
writes every reader of the audience exactly once, with every row in one batch."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, insert, select, text, update

from clarion import jobqueue
from clarion.alerts import segments
from clarion.audience import erasure
from clarion.db import session_scope
from clarion.delivery import dispatch, members, sending
from clarion.models import (
    Alert,
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


def english_send(session, count: int) -> tuple[object, list[int], Alert]:
    """A list of `count` readers who read English, and a started send to those who do."""
    news = make_list(session, "news")
    readers = make_audience(session, news, count)
    speak(session, readers, "en")
    return news, readers, language_alert(session, [news], "en")


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


@pytest.fixture
def step_by_step(monkeypatch):
    """A segment's readers chosen one small span at a time, one page ahead of the writer: while
    the writer is past page n, the chooser has chosen at most pages n + 1 and n + 2."""
    monkeypatch.setattr(members, "CHOOSE_SPAN", PAGE)
    monkeypatch.setattr(members, "AHEAD", 1)


def after_the_first_page(monkeypatch, then) -> None:
    """Run `then()` once, when dispatch has committed its first page."""
    remember, done = dispatch.linkmap.remember_deliveries, []

    def hook(alert_id, ids):
        remember(alert_id, ids)
        if not done:
            done.append(then())

    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", hook)


def test_a_segment_reader_is_judged_when_their_range_is_chosen_ahead_of_the_writer(
    session, queue, small_pages, step_by_step, monkeypatch
):
    news = make_list(session, "news")
    readers = make_audience(session, news, 12)  # four ranges of three
    speak(session, readers[:10], "en")
    speak(session, readers[10:], "pl")
    alert = language_alert(session, [news], "en")

    def change_the_last_range():  # not chosen yet: pages 2 and 3 at most
        speak(session, [readers[9]], "pl")  # no longer meets the conditions
        speak(session, [readers[10]], "en")  # now does
        speak(session, [readers[0]], "pl")  # too late: already written

    after_the_first_page(monkeypatch, change_the_last_range)
    assert dispatch.dispatch(alert.id) == 10

    assert in_ledger(session, alert.id) == [*readers[:9], readers[10]]
    assert session.get(Alert, alert.id).dispatched_at is not None
    assert_batched_once(session, alert.id)


def chosen_pages(session, alert: Alert) -> list[members.Page]:
    """Every page the alert's conditions choose now, as the read-ahead hands them over."""
    found = members.pages(session, alert.frozen_meta["audience"], 0, PAGE, PAGE)
    chosen = list(found)
    session.rollback()
    return chosen


def write(session, alert: Alert, page: members.Page) -> int:
    written = dispatch._write_page(session, alert, page.after, page.upto, page)
    session.commit()
    return len(written)


def test_a_chosen_reader_who_leaves_before_the_mail_goes_is_never_sent_it(
    session, settings, smtp_sink, queue, small_pages, step_by_step, monkeypatch
):
    smtp_sink.clear()
    _news, readers, alert = english_send(session, 9)
    emails = {i: session.get(Subscriber, i).email for i in readers}
    gone, suppressed = readers[4], readers[5]  # chosen, or about to be, when they leave

    def leave():
        with session_scope() as other:
            other.execute(
                update(Subscription)
                .where(Subscription.subscriber_id == gone)
                .values(status=SubscriptionStatus.UNSUBSCRIBED)
            )
            other.add(Suppression(email=emails[suppressed], reason="hard_bounce"))

    after_the_first_page(monkeypatch, leave)
    dispatch.dispatch(alert.id)
    queue.drain(timeout=60)

    sent_to = {address for mail in smtp_sink.messages() for address in mail.envelope_to}
    assert sent_to == {emails[i] for i in readers if i not in (gone, suppressed)}


def test_a_reader_made_after_their_page_was_chosen_is_not_written_under_an_erased_readers_id(
    session, queue
):
    # SQLite gives the highest id again once its row is gone: a reader who signs up between the
    # choosing and the writing of a page must not take the erased reader's place (PostgreSQL's
    # sequence gives them a new id, which the page does not hold).
    news, readers, alert = english_send(session, 3)
    (page,) = chosen_pages(session, alert)
    erasure.erase_reader(session, session.get(Subscriber, readers[-1]))
    session.commit()
    newcomer = make_audience(session, news, 1, prefix="n")
    speak(session, newcomer, "en")
    if session.bind.dialect.name == "sqlite":
        assert newcomer == readers[-1:]  # the erased reader's id

    assert write(session, alert, page) == 2

    assert in_ledger(session, alert.id) == readers[:-1]


def test_a_segment_dispatch_that_starts_again_chooses_the_rest_anew_and_writes_no_one_twice(
    session, queue, small_pages, monkeypatch
):
    _news, readers, alert = english_send(session, 12)
    remember = crash_after_two_pages(monkeypatch)
    with pytest.raises(Crash):
        dispatch.dispatch(alert.id)
    assert in_ledger(session, alert.id) == readers[:6]
    speak(session, readers[-3:], "pl")  # no longer chosen when the dispatch starts again
    monkeypatch.setattr(dispatch.linkmap, "remember_deliveries", remember)

    dispatch.dispatch(alert.id)

    assert in_ledger(session, alert.id) == readers[:-3]  # each once
    assert_batched_once(session, alert.id)


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "clarion-read-ahead"]


def test_cancelling_a_segment_send_mid_dispatch_stops_its_read_ahead(
    session, queue, small_pages, step_by_step, monkeypatch
):
    _news, readers, alert = english_send(session, 12)

    def cancel():
        with session_scope() as other:
            sending.cancel(other, other.get(Alert, alert.id))

    after_the_first_page(monkeypatch, cancel)
    assert dispatch.dispatch(alert.id) == PAGE

    assert read_ahead_threads() == []
    assert in_ledger(session, alert.id) == readers[:PAGE]
    assert dispatch.dispatch(alert.id) == 0


def test_a_failure_while_choosing_reaches_the_dispatch_task_and_ends_the_thread(
    session, queue, small_pages, monkeypatch
):
    _news, readers, alert = english_send(session, 6)
    chosen = members._chosen

    def fail_on_the_second_span(session, query, span):
        if span["span_after"] > 0:
            raise RuntimeError("the database went away")
        return chosen(session, query, span)

    monkeypatch.setattr(members, "_chosen", fail_on_the_second_span)
    with pytest.raises(RuntimeError, match="went away"):
        dispatch.dispatch(alert.id)

    assert read_ahead_threads() == []
    assert in_ledger(session, alert.id) == readers[:PAGE]  # the sweep starts it again later
    assert session.get(Alert, alert.id).dispatched_at is None


def test_a_follow_up_to_the_unreached_of_a_segment_send_chooses_its_own_readers(
    session, queue, small_pages
):
    _news, readers, alert = english_send(session, 7)
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
