"""The import writer on its own: each chunk's readers, subscriptions, tags and consent records,
column by column, without the file parsing, the job or the worker around it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clarion import throttle
from clarion.audience.import_writer import ImportOptions, ImportWriter, ParsedRow, add_confirmed
from clarion.models import (
    ConsentRecord,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
)
from tests.helpers import refresh


def options(list_ids, **extra) -> ImportOptions:
    return ImportOptions(file_name="people.csv", list_ids=list_ids, mapping={0: "email"}, **extra)


def row(line: int, email: str, **values) -> ParsedRow:
    return ParsedRow(line=line, cells=[email], email=email, **values)


def reader(session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def subscriptions(session, email: str) -> dict[int, Subscription]:
    found = session.scalars(
        select(Subscription).join(Subscriber).where(Subscriber.email == email)
    ).all()
    return {s.list_id: s for s in found}


def consents(session) -> dict[int, ConsentRecord]:
    found = session.scalars(select(ConsentRecord).where(ConsentRecord.action == "import"))
    return {r.details["line"]: r for r in found}


def test_options_and_rows_start_from_what_an_editor_left_unchosen():
    assert options([7]).to_json() == {
        "file_name": "people.csv",
        "list_ids": [7],
        "mapping": {"0": "email"},
        "encoding": "auto",
        "delimiter": ",",
        "has_header": True,
        "extra_tags": [],
        "editor_email": "",
        "consent_statement": "",
    }
    chosen = options(
        [7, 8],
        encoding="cp1251",
        delimiter=";",
        has_header=False,
        extra_tags=["x"],
        editor_email="e@example.org",
        consent_statement="Yes.",
    )
    assert ImportOptions.from_json(chosen.to_json()) == chosen
    assert ImportOptions.from_json(options([7]).to_json()).mapping == {0: "email"}
    fresh = ParsedRow(line=3, cells=["a"])
    assert (fresh.email, fresh.name, fresh.language, fresh.tags, fresh.consent, fresh.reason) == (
        "",
        None,
        "",
        [],
        False,
        "",
    )
    assert fresh.tags is not ParsedRow(line=4, cells=[]).tags


def test_a_new_reader_is_written_with_every_column(session, lists):
    alerts, news = lists["alerts"].id, lists["news"].id
    counts = ImportWriter(session, options([alerts, news])).write(
        [
            row(2, "new@example.org", name="Алесь Бяляцкі", language="be", consent=True),
            row(3, "nameless@example.org", language="en"),
        ]
    )
    session.commit()
    assert counts == {"created": 2, "updated": 0}
    new = reader(session, "new@example.org")
    assert (new.name, new.name_search, new.language, new.source) == (
        "Алесь Бяляцкі",
        "алесь бяляцкі",
        "be",
        "import",
    )
    assert len(new.uid) >= 16 and new.uid != reader(session, "nameless@example.org").uid
    assert new.created_at is not None and new.updated_at == new.created_at
    nameless = reader(session, "nameless@example.org")
    assert (nameless.name, nameless.name_search) == (None, None)
    subs = subscriptions(session, "new@example.org")
    assert sorted(subs) == sorted([alerts, news])
    for sub in subs.values():
        assert (sub.status, sub.source) == (SubscriptionStatus.SUBSCRIBED, "import")
        assert sub.subscribed_at == sub.created_at == sub.updated_at is not None
    for sub in subscriptions(session, "nameless@example.org").values():
        assert (sub.status, sub.source, sub.subscribed_at) == (
            SubscriptionStatus.PENDING,
            "import",
            None,
        )
        assert sub.created_at is not None and sub.updated_at == sub.created_at


def test_each_changed_reader_gets_one_consent_record_saying_where_it_came_from(session, lists):
    alerts, news = lists["alerts"].id, lists["news"].id
    ImportWriter(session, options([alerts, news], editor_email="owner@example.org")).write(
        [row(2, "yes@example.org", consent=True), row(5, "no@example.org")]
    )
    ImportWriter(session, options([news])).write([row(9, "cli@example.org")])
    session.commit()
    records = consents(session)
    assert sorted(records) == [2, 5, 9]
    yes, no, cli = records[2], records[5], records[9]
    assert yes.subscriber_id == reader(session, "yes@example.org").id
    assert sorted(yes.list_ids) == sorted([alerts, news]) and cli.list_ids == [news]
    assert yes.details == {
        "file": "people.csv",
        "editor": "owner@example.org",
        "line": 2,
        "consent": True,
    }
    assert no.details["consent"] is False and cli.details["editor"] == "the command line"
    assert yes.consent_text == (
        "Imported from people.csv by owner@example.org; the consent column says yes."
    )
    assert no.consent_text == "Imported from people.csv by owner@example.org; no consent given."
    assert cli.consent_text == "Imported from people.csv by the command line; no consent given."
    for record in records.values():
        assert (record.source, record.form, record.consent_version) == ("import", "import", "")
        assert record.created_at is not None
    assert yes.confirmed_at == yes.created_at and no.confirmed_at is None


def test_a_statement_given_word_for_word_is_the_consent_text(session, lists):
    statement = "I agree to receive urgent alerts from the campaign."
    result = add_confirmed(
        session,
        options([lists["alerts"].id], consent_statement=statement, editor_email="api"),
        "api@example.org",
        "Api Reader",
        "pl",
        ["from-api"],
    )
    session.commit()
    assert result == {"created": 1, "updated": 0, "refused": ""}
    [record] = consents(session).values()
    assert record.consent_text == statement and record.details["line"] == 0
    assert record.confirmed_at is not None
    made = reader(session, "api@example.org")
    assert (made.name, made.language) == ("Api Reader", "pl")
    assert subscriptions(session, "api@example.org")[lists["alerts"].id].status == (
        SubscriptionStatus.SUBSCRIBED
    )


def test_known_readers_are_confirmed_or_left_as_they_are(session, lists, subscribed):
    alerts, news = lists["alerts"].id, lists["news"].id
    pending = Subscriber(email="pending@example.org", name="Known name", language="uk")
    session.add(pending)
    session.flush()
    session.add(
        Subscription(subscriber_id=pending.id, list_id=alerts, status=SubscriptionStatus.PENDING)
    )
    session.commit()
    before = reader(session, "pending@example.org").updated_at
    known_rows = [
        row(2, "pending@example.org", name="Other", language="en", consent=True),
        row(3, "reader@example.org", consent=True, tags=["known"]),
    ]
    counts = ImportWriter(session, options([alerts])).write(known_rows)
    session.commit()
    refresh(session)
    assert counts == {"created": 0, "updated": 1}
    assert [r.reason for r in known_rows] == ["", ""]  # nothing to do is no refusal
    assert session.scalar(select(Tag.name)) == "known"
    known = reader(session, "pending@example.org")
    assert (known.name, known.language) == ("Known name", "uk")
    confirmed = subscriptions(session, "pending@example.org")[alerts]
    assert confirmed.status == SubscriptionStatus.SUBSCRIBED
    assert confirmed.subscribed_at is not None and confirmed.updated_at == confirmed.subscribed_at
    assert confirmed.subscribed_at >= before
    assert list(consents(session)) == [2]  # the reader already subscribed changed nothing
    # A pending reader whose row gives no consent stays pending, and nothing is recorded.
    again = ImportWriter(session, options([news])).write([row(4, "reader@example.org")])
    assert again == {"created": 0, "updated": 0}
    still = ImportWriter(session, options([alerts])).write([row(5, "other@example.org")])
    session.commit()
    assert still == {"created": 1, "updated": 0}
    unconfirmed = ImportWriter(session, options([alerts])).write([row(6, "other@example.org")])
    session.commit()
    assert unconfirmed == {"created": 0, "updated": 0}
    assert subscriptions(session, "other@example.org")[alerts].status == SubscriptionStatus.PENDING
    assert sorted(consents(session)) == [2, 5]


def test_who_left_a_list_is_never_added_to_it_again(session, lists):
    alerts, news = lists["alerts"].id, lists["news"].id
    left = Subscriber(email="left@example.org")
    session.add(left)
    session.flush()
    session.add(
        Subscription(subscriber_id=left.id, list_id=alerts, status=SubscriptionStatus.UNSUBSCRIBED)
    )
    session.commit()
    refused = row(2, "left@example.org", consent=True, tags=["minsk"])
    assert ImportWriter(session, options([alerts])).write([refused]) == {
        "created": 0,
        "updated": 0,
    }
    assert refused.reason == "Left this list earlier; an import never re-adds someone who left."
    assert session.scalars(select(SubscriberTag)).all() == []
    # Left one list, added to another: the row counts, and the list left stays left.
    partly = row(3, "left@example.org", consent=True)
    assert ImportWriter(session, options([alerts, news])).write([partly]) == {
        "created": 0,
        "updated": 1,
    }
    session.commit()
    assert partly.reason == ""
    states = {lid: s.status for lid, s in subscriptions(session, "left@example.org").items()}
    assert states == {alerts: SubscriptionStatus.UNSUBSCRIBED, news: SubscriptionStatus.SUBSCRIBED}
    assert consents(session)[3].list_ids == [news]


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        (SuppressionReason.HARD_BOUNCE, "hard bounce"),
        (SuppressionReason.COMPLAINT, "complaint"),
        (SuppressionReason.MANUAL, "suppressed by an editor"),
    ],
)
def test_a_suppressed_address_is_refused_saying_why(session, lists, reason, label):
    session.add(Suppression(email="gone@example.org", reason=reason))
    session.commit()
    refused = row(2, "gone@example.org", consent=True)
    kept = row(3, "kept@example.org", consent=True)
    counts = ImportWriter(session, options([lists["alerts"].id])).write([refused, kept])
    assert counts == {"created": 1, "updated": 0}
    assert refused.reason == f"Suppressed ({label}): this address receives no mail."
    assert kept.reason == ""
    assert reader(session, "gone@example.org") is None
    assert reader(session, "kept@example.org") is not None


def test_an_erased_address_is_refused_by_its_keyed_hash_alone(session, lists):
    session.add(
        Suppression(
            email=None,
            email_hash=throttle.address_key("erased@example.org"),
            reason=SuppressionReason.ERASED,
        )
    )
    session.commit()
    erased = row(2, "erased@example.org")
    other = row(3, "other@example.org")
    assert ImportWriter(session, options([lists["alerts"].id])).write([erased, other]) == {
        "created": 1,
        "updated": 0,
    }
    assert erased.reason == "Suppressed (reader erased): this address receives no mail."
    assert other.reason == "" and reader(session, "erased@example.org") is None


def test_rows_already_refused_are_not_written(session, lists):
    bad = row(2, "bad@example.org", reason="Duplicate of line 1 in this file.", tags=["x"])
    counts = ImportWriter(session, options([lists["alerts"].id])).write([bad])
    assert counts == {"created": 0, "updated": 0}
    assert bad.reason == "Duplicate of line 1 in this file."
    assert reader(session, "bad@example.org") is None
    assert session.scalars(select(Tag)).all() == []


def test_tags_are_found_by_name_whatever_the_case_and_never_added_twice(session, lists):
    alerts = lists["alerts"].id
    writer = ImportWriter(session, options([alerts], extra_tags=["Import-2030"]))
    assert set(writer.tag_ids) == {"import-2030"}
    writer.write(
        [
            row(2, "a@example.org", tags=["Minsk", "minsk", "import-2030"]),
            row(3, "b@example.org"),
        ]
    )
    # The same readers again, one with a new tag: only the new pair is added.
    ImportWriter(session, options([alerts], extra_tags=["IMPORT-2030"])).write(
        [row(4, "a@example.org", tags=["MINSK", "Hrodna"])]
    )
    session.commit()
    pairs = session.execute(
        select(Subscriber.email, Tag.name)
        .join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id)
        .join(Tag, Tag.id == SubscriberTag.tag_id)
    ).all()
    assert sorted(pairs) == [
        ("a@example.org", "Hrodna"),
        ("a@example.org", "Import-2030"),
        ("a@example.org", "Minsk"),
        ("b@example.org", "Import-2030"),
    ]
    assert sorted(session.scalars(select(Tag.name))) == ["Hrodna", "Import-2030", "Minsk"]
