"""Erasing a reader: every table of the schema is searched afterwards for their address and name;
the figures (signature count, clicks) and an anonymous proof of consent stay, and the address
cannot come back by a re-import or a sign-up."""

from __future__ import annotations

from sqlalchemy import func, select

from clarion import throttle
from clarion.actions.petition_export import export_signatures
from clarion.audience import subscribers
from clarion.audience.import_writer import ImportOptions, ImportWriter, ParsedRow
from clarion.db import Base, utcnow
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    ApiToken,
    Bounce,
    BounceClass,
    Click,
    ConsentRecord,
    Delivery,
    DeliveryStatus,
    Editor,
    IdempotentRequest,
    InboundMessage,
    NoticeMail,
    Open,
    Petition,
    Signature,
    Stay,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
    WebhookEvent,
)
from tests.helpers import csrf_from, refresh

EMAIL = "zelda.quorn@example.org"
NAME = "Zelda Quorn"
# What must not survive anywhere, in any case or encoding we store.
NEEDLES = (EMAIL, "zelda.quorn", NAME.lower(), "quorn")

# Tables this test fills with the reader's data before erasing them.
FILLED = {
    "subscribers",
    "subscriptions",
    "subscriber_tags",
    "consent_records",
    "deliveries",
    "clicks",
    "opens",
    "signatures",
    "bounces",
    "inbound_messages",
    "notice_mails",
    "suppressions",
    "audit_log",
    "idempotent_requests",
    "webhook_events",
    "stays",  # who pressed "Yes, keep me": goes with the reader (ON DELETE CASCADE)
}
# Tables that never hold a reader's address or name, and why. A new table must be put in one
# of the two sets: this test fails until someone has decided what erasure does with it.
NO_READER_DATA = {
    "app_settings": "owner settings",
    "editors": "editors' own accounts",
    "feeds": "blog feeds",
    "feed_entries": "blog posts seen",
    "lists": "mailing lists",
    "tags": "labels editors made",
    "alerts": "what editors wrote; rendered with markers, not readers' names",
    "petitions": "what editors wrote",
    "jobs": "paths and counts of imports and exports",
    "admin_notices": "about our sending, never about one reader",
    "delivery_batches": "ranges of ledger ids",
    "click_counts": "per-link figures only",
    "api_tokens": "keyed hashes of editors' tokens, their scopes and dates",
    "webhook_endpoints": "URLs and sealed secrets owners registered",
    "webhook_deliveries": "states, status codes and our own error words, by ids",
    "segments": "conditions editors saved: ids of lists, petitions, alerts, tags, never readers",
    "follow_ups": "which alert follows up which, and the rule",
    "series": "automations editors made: a trigger and a goal by ids",
    "series_steps": "a series' alerts, delays and conditions by ids",
    "series_entries": "a reader's id and place in a series: deleted with the reader (cascade)",
}


def _reader_everywhere(session, lists, *, suppressed: bool = True) -> Subscriber:
    """A reader with a row of their own in every table that can hold one."""
    reader = Subscriber(email=EMAIL, name=NAME, source="web")
    session.add(reader)
    session.flush()
    tag = Tag(name="Hrodna")
    petition = Petition(slug="free-them", title="Free them")
    alert = Alert(kind=AlertKind.NEWSLETTER, name="News", status=AlertStatus.SENT)
    session.add_all([tag, petition, alert])
    session.flush()
    delivery = Delivery(
        alert_id=alert.id,
        subscriber_id=reader.id,
        status=DeliveryStatus.SENT,
        sent_at=utcnow(),
        last_reply=f"250 2.0.0 <{EMAIL}> queued",
        message_id="<abc@clarion.test>",
    )
    session.add(delivery)
    session.flush()
    raw = f"From: MAILER-DAEMON\r\nSubject: failure\r\n\r\n<{EMAIL.upper()}>: over quota\r\n"
    session.add_all(
        [
            Subscription(
                subscriber_id=reader.id,
                list_id=lists["alerts"].id,
                status=SubscriptionStatus.SUBSCRIBED,
            ),
            SubscriberTag(subscriber_id=reader.id, tag_id=tag.id),
            ConsentRecord(
                subscriber_id=reader.id,
                action="subscribe",
                list_ids=[lists["alerts"].id],
                details={"name": NAME},
                ip="203.0.113.9",
                user_agent="Firefox",
                confirmed_at=utcnow(),
                confirm_ip="203.0.113.9",
            ),
            Click(
                alert_id=alert.id, delivery_id=delivery.id, subscriber_id=reader.id, link_index=0
            ),
            Open(alert_id=alert.id, delivery_id=delivery.id),
            Stay(alert_id=alert.id, subscriber_id=reader.id),
            Signature(
                petition_id=petition.id,
                email=EMAIL,
                name=NAME,
                comment=f"I am {NAME}",
                country="BY",
                subscriber_id=reader.id,
                confirmed_at=utcnow(),
            ),
            Signature(petition_id=petition.id, email="other@example.org", name="Other"),
            Bounce(
                source="smtp",
                delivery_id=delivery.id,
                subscriber_id=reader.id,
                email=EMAIL,
                classification=BounceClass.SOFT,
                reason=f"<{EMAIL}> over quota",
                evidence=raw.encode(),
            ),
            InboundMessage(source="smtp", raw=raw.encode(), processed_at=utcnow()),
            NoticeMail(kind="confirm", email=EMAIL, subscriber_id=reader.id),
            # A signature's confirmation: the address alone names the reader.
            NoticeMail(kind="signature_confirm", email=EMAIL, reply=f"250 <{EMAIL}> ok"),
            NoticeMail(kind="signature_confirm", email="other@example.org"),
            InboundMessage(source="smtp", raw=b"Subject: about someone else\r\n\r\nhi\r\n"),
        ]
    )
    _api_answers(session)
    # An event still in the webhook outbox that names the reader, and one that does not.
    session.add_all(
        [
            WebhookEvent(
                uid="msg_reader",
                type="subscriber.confirmed",
                payload={"subscriber_id": reader.id, "email": EMAIL},
                subject_key=throttle.address_key(EMAIL),
            ),
            WebhookEvent(uid="msg_other", type="alert.started", payload={"alert_id": alert.id}),
        ]
    )
    if suppressed:
        session.add(
            Suppression(email=EMAIL, reason=SuppressionReason.COMPLAINT, detail=f"ARF {EMAIL}")
        )
    session.commit()
    return reader


def _api_answers(session) -> None:
    """An answer kept for a retried API request that shows the reader, and one that does not."""
    editor = Editor(email="api@example.org", password_hash="x")
    session.add(editor)
    session.flush()
    token = ApiToken(editor_id=editor.id, token_hash="0" * 64, prefix="clarion_x", scopes=[])
    session.add(token)
    session.flush()
    shown = {"subscriber": {"email": EMAIL, "name": NAME}, "status": "pending"}
    session.add_all(
        [
            IdempotentRequest(token_id=token.id, key="a", request_hash="h", response=shown),
            IdempotentRequest(token_id=token.id, key="b", request_hash="h", response={"x": 1}),
        ]
    )


def _remaining(session) -> list[str]:
    """Every (table, column) of the whole schema still holding the address or the name."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)).mappings():
            for column, value in row.items():
                if value is None:
                    continue
                text = (
                    bytes(value).decode("latin-1")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                ).lower()
                if any(needle in text for needle in NEEDLES):
                    found.append(f"{table.name}.{column}")
    return found


def test_every_table_is_either_filled_here_or_declared_free_of_reader_data():
    tables = {t.name for t in Base.metadata.sorted_tables}
    assert not FILLED & set(NO_READER_DATA)
    assert tables == FILLED | set(NO_READER_DATA), "decide what erasure does with new tables"


def test_an_owner_erases_a_reader_and_nothing_names_them_anywhere(client, session, login, lists):
    reader = _reader_everywhere(session, lists)
    reader_id = reader.id
    assert len(_remaining(session)) > 10  # the search finds what is there
    login(client, "owner")
    page = client.get(f"/admin/subscribers/{reader_id}").get_data(as_text=True)
    response = client.post(
        f"/admin/subscribers/{reader_id}/delete", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302
    refresh(session)
    assert _remaining(session) == []
    # The person goes; the figures and the anonymous proof of consent stay.
    assert session.scalar(select(func.count()).select_from(Signature)) == 2
    petition = session.scalar(select(Petition))
    owner = session.scalar(select(Editor).where(Editor.email == "owner@example.org"))
    exported = export_signatures(session, owner, petition)
    assert exported.count("\r\n") == 2 and "other@example.org" in exported  # header, Other
    assert session.scalar(select(func.count()).select_from(Click)) == 1
    assert session.scalar(select(func.count()).select_from(Open)) == 1
    assert session.scalar(select(func.count()).select_from(Stay)) == 0  # who stayed: them
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
    assert list(session.scalars(select(NoticeMail.email))) == ["other@example.org"]
    # The answer kept for a retry that showed the reader goes; the other stays.
    assert session.scalars(select(IdempotentRequest.key)).all() == ["b"]
    proof = session.scalar(select(ConsentRecord))
    assert proof.subscriber_id is None and proof.email_hash == throttle.address_key(EMAIL)
    assert proof.list_ids == [lists["alerts"].id] and proof.confirmed_at is not None
    assert proof.ip is None and proof.details == {}
    [suppression] = session.scalars(select(Suppression)).all()
    assert suppression.email is None and suppression.email_hash == throttle.address_key(EMAIL)


def test_an_erased_address_cannot_be_imported_or_signed_up_again(client, session, login, lists):
    reader = _reader_everywhere(session, lists, suppressed=False)
    login(client, "owner")
    page = client.get(f"/admin/subscribers/{reader.id}").get_data(as_text=True)
    client.post(f"/admin/subscribers/{reader.id}/delete", data={"csrf_token": csrf_from(page)})
    refresh(session)
    assert subscribers.is_suppressed(session, EMAIL)
    outcome = subscribers.subscribe(
        session,
        subscribers.SubscribeRequest(email=EMAIL, list_ids=[lists["alerts"].id], name=NAME),
    )
    assert outcome.consent_id is None
    row = ParsedRow(line=2, cells=[EMAIL], email=EMAIL, name=NAME)
    options = ImportOptions(
        file_name="old.csv", list_ids=[lists["alerts"].id], mapping={0: "email"}
    )
    ImportWriter(session, options).write([row])
    assert row.reason == "Suppressed (reader erased): this address receives no mail."
    assert session.scalar(select(Subscriber).where(Subscriber.email == EMAIL)) is None
