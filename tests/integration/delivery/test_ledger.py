"""The ledger's batch statements on their own: which rows a batch claims, who may still be sent
to, and what an outcome writes back (on PostgreSQL as arrays, elsewhere row by row)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from clarion.db import utcnow
from clarion.delivery import ledger
from clarion.models import (
    BounceClass,
    Delivery,
    DeliveryStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from tests.helpers import refresh
from tests.sendkit import make_alert, make_list


def _reader(session, email: str, **values) -> Subscriber:
    reader = Subscriber(email=email, **values)
    session.add(reader)
    session.flush()
    return reader


def _row(session, alert, reader, **values) -> Delivery:
    row = Delivery(alert_id=alert.id, subscriber_id=reader.id, **values)
    session.add(row)
    session.flush()
    return row


def _statuses(session, ids) -> dict[int, tuple]:
    refresh(session)
    return {
        d.id: (d.status, d.claimed_at, d.updated_at)
        for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))
    }


def test_a_batch_claims_its_alert_s_queued_and_due_rows_of_its_range_only(session):
    """Both ends of the range belong to it; a deferred row is due at its very instant."""
    lists = [make_list(session)]
    alert, other = make_alert(session, lists), make_alert(session, lists, name="Other")
    now = utcnow().replace(microsecond=0)
    before = now - timedelta(hours=1)
    kinds = [
        ("below", alert, {}),
        ("first", alert, {}),
        ("other alert", other, {}),
        ("due now", alert, {"status": DeliveryStatus.DEFERRED, "next_attempt_at": now}),
        ("due later", alert, {"status": DeliveryStatus.DEFERRED,
                              "next_attempt_at": now + timedelta(seconds=1)}),
        ("overdue", alert, {"status": DeliveryStatus.DEFERRED,
                            "next_attempt_at": now - timedelta(minutes=5)}),
        ("sent", alert, {"status": DeliveryStatus.SENT}),
        ("sending", alert, {"status": DeliveryStatus.SENDING, "claimed_at": before}),
        ("failed", alert, {"status": DeliveryStatus.FAILED}),
        ("skipped", alert, {"status": DeliveryStatus.SKIPPED}),
        ("last", alert, {}),
        ("above", alert, {}),
    ]  # fmt: skip
    rows = {
        label: _row(session, owner, _reader(session, f"{i}@example.org"), updated_at=before,
                    **values)
        for i, (label, owner, values) in enumerate(kinds)
    }  # fmt: skip
    session.commit()
    ids = {label: row.id for label, row in rows.items()}

    claimed = ledger.claim(session, alert.id, ids["first"], ids["last"], now)
    session.commit()

    assert sorted(claimed) == sorted(ids[k] for k in ("first", "due now", "overdue", "last"))
    after = _statuses(session, ids.values())
    for label in ("first", "due now", "overdue", "last"):
        assert after[ids[label]] == (DeliveryStatus.SENDING, now, now), label
    for label in ("below", "other alert", "due later", "above"):
        assert after[ids[label]][0] in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED), label
        assert after[ids[label]][1:] == (None, before), label
    for label in ("sent", "failed", "skipped"):
        assert after[ids[label]] == (DeliveryStatus(label), None, before), label
    assert after[ids["sending"]] == (DeliveryStatus.SENDING, before, before)


def test_a_claimed_reader_is_eligible_only_if_still_subscribed_on_a_list_and_not_suppressed(
    session,
):
    """Loaded in delivery order with what a message needs; eligibility is checked per reader."""
    alerts, other_list = make_list(session), make_list(session, "other")
    alert = make_alert(session, [alerts])
    cases = {
        # email: (subscription status on the alert's list or None, on the other list, suppressed)
        "stays@example.org": (SubscriptionStatus.SUBSCRIBED, None, False),
        "left@example.org": (SubscriptionStatus.UNSUBSCRIBED, None, False),
        "pending@example.org": (SubscriptionStatus.PENDING, None, False),
        "elsewhere@example.org": (None, SubscriptionStatus.SUBSCRIBED, False),
        "complained@example.org": (SubscriptionStatus.SUBSCRIBED, None, True),
        "both@example.org": (SubscriptionStatus.UNSUBSCRIBED, None, True),
    }
    readers, rows = {}, {}
    for i, (address, (here, there, suppressed)) in enumerate(cases.items()):
        reader = _reader(session, address, name=f"Reader {i}" if i % 2 else None,
                         language=["be", "uk", "en"][i % 3])  # fmt: skip
        for ml, status in ((alerts, here), (other_list, there)):
            if status is not None:
                session.add(Subscription(subscriber_id=reader.id, list_id=ml.id, status=status))
        if suppressed:
            session.add(Suppression(email=address, reason=SuppressionReason.COMPLAINT))
        readers[address] = reader
        rows[address] = _row(session, alert, reader, attempts=i)
    # A suppression of someone else, and a reader not in the batch, change nothing.
    session.add(Suppression(email="stranger@example.org", reason=SuppressionReason.MANUAL))
    outside = _reader(session, "outside@example.org")
    session.add(Subscription(subscriber_id=outside.id, list_id=alerts.id,
                             status=SubscriptionStatus.SUBSCRIBED))  # fmt: skip
    _row(session, alert, outside)
    session.commit()

    ids = [rows[a].id for a in reversed(cases)]
    loaded = ledger.load_recipients(session, ids, [alerts.id])

    assert loaded == [
        ledger.Claimed(
            delivery_id=rows[a].id,
            attempts=i,
            subscriber_id=readers[a].id,
            uid=readers[a].uid,
            email=a,
            name=f"Reader {i}" if i % 2 else None,
            language=["be", "uk", "en"][i % 3],
            eligible=a == "stays@example.org",
        )
        for i, a in enumerate(cases)
    ]
    # The same readers, asked about both lists: the one subscribed elsewhere may be sent to.
    again = ledger.load_recipients(session, ids, [alerts.id, other_list.id])
    assert {r.email for r in again if r.eligible} == {"stays@example.org", "elsewhere@example.org"}
    assert ledger.load_recipients(session, [], [alerts.id]) == []


def test_an_outcome_writes_every_column_and_adds_its_attempts(session):
    lists = [make_list(session)]
    alert = make_alert(session, lists)
    now = utcnow().replace(microsecond=0)
    earlier = now - timedelta(hours=2)
    old = {"status": DeliveryStatus.SENDING, "attempts": 2, "claimed_at": earlier,
           "next_attempt_at": earlier, "sent_at": earlier, "last_reply": "old",
           "message_id": "<old@x>", "server": "old.example.org", "updated_at": earlier}  # fmt: skip
    sent, deferred, plain = (
        _row(session, alert, _reader(session, f"{n}@example.org"), **old) for n in "abc"
    )
    session.commit()

    def claimed(row):
        return ledger.Claimed(row.id, row.attempts, row.subscriber_id, "u", "e", None, None, True)

    results = [
        ledger.Result(claimed(sent), DeliveryStatus.SENT, "250 " + "y" * 1500, sent_at=now,
                      message_id="<m1@example.org>", server="mx.example.org"),
        ledger.Result(claimed(deferred), DeliveryStatus.DEFERRED, "451 try later", tried=3,
                      next_at=now + timedelta(minutes=10),
                      bounce=(BounceClass.SOFT, "4.2.2", "full")),
        ledger.Result(claimed(plain), DeliveryStatus.FAILED, "550 no such user"),
    ]  # fmt: skip
    ledger.record_outcomes(session, results, now)
    session.commit()
    refresh(session)

    def columns(row):
        d = session.get(Delivery, row.id)
        return (d.status, d.attempts, d.next_attempt_at, d.claimed_at, d.sent_at, d.last_reply,
                d.message_id, d.server, d.updated_at)  # fmt: skip

    assert columns(sent) == (DeliveryStatus.SENT, 3, None, None, now, "250 " + "y" * 996,
                             "<m1@example.org>", "mx.example.org", now)  # fmt: skip
    assert columns(deferred) == (DeliveryStatus.DEFERRED, 5, now + timedelta(minutes=10), None,
                                 None, "451 try later", None, None, now)  # fmt: skip
    assert columns(plain) == (DeliveryStatus.FAILED, 3, None, None, None, "550 no such user",
                              None, None, now)  # fmt: skip
    assert (results[2].tried, results[2].bounce) == (1, None)


def test_a_list_of_ids_travels_to_postgresql_as_one_typed_array():
    """`among` on PostgreSQL: `= ANY(CAST(:p AS BIGINT[]))` for ids, TEXT[] for addresses,
    one parameter (an array literal in text) however long the list; elsewhere a plain IN."""
    pg = Session(bind=create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))

    def compiled(column, values):
        clause = ledger.among(pg, column, values)
        return clause.compile(dialect=pg.get_bind().dialect)

    ids = compiled(Delivery.id, list(range(300)))
    assert str(ids) == "deliveries.id = ANY (CAST(%(param_1)s::VARCHAR AS BIGINT[]))"
    assert ids.params == {"param_1": "{" + ",".join(map(str, range(300))) + "}"}
    ints = compiled(Delivery.attempts, [1, 2])
    assert str(ints) == "deliveries.attempts = ANY (CAST(%(param_1)s::VARCHAR AS BIGINT[]))"
    emails = compiled(Suppression.email, ["a@example.org", 'b"\\@example.org'])
    assert str(emails) == "suppressions.email = ANY (CAST(%(param_1)s::VARCHAR AS TEXT[]))"
    assert emails.params == {"param_1": '{"a@example.org","b\\"\\\\@example.org"}'}

    lite = Session(bind=create_engine("sqlite://"))
    plain = ledger.among(lite, Delivery.id, [1, 2, 3]).compile(dialect=lite.get_bind().dialect)
    assert str(plain) == "deliveries.id IN (__[POSTCOMPILE_id_1])"
    assert plain.params == {"id_1": [1, 2, 3]}
