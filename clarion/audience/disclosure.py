"""A reader's own copy of everything Clarion holds about them, sent as an expiring link by mail.

The preference centre only asks for it: the link goes to the reader's address, so whoever holds
a forwarded preferences link learns nothing from pressing the button.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clarion import throttle, tokens
from clarion.alerts import identity, personal
from clarion.alerts.freeze import shown
from clarion.alerts.rendering import render_template_file
from clarion.audience import subscribers
from clarion.config import get_settings
from clarion.delivery import mailer
from clarion.delivery.refusals import RefusalPolicy
from clarion.models import (
    Alert,
    Bounce,
    Click,
    ConsentRecord,
    Delivery,
    MailingList,
    Petition,
    Signature,
    Subscriber,
    SubscriberTag,
    Subscription,
    Tag,
)

DATA_LINK_TTL_HOURS = 24
ASK_AGAIN_SECONDS = 15 * 60  # one mail a quarter of an hour, however often the button is pressed


def data_token(subscriber: Subscriber) -> str:
    """The signed, expiring token of a reader's download link."""
    return tokens.sign_timed(tokens.DATA_EXPORT, subscriber.uid)


def subscriber_for_data_token(session: Session, token: str) -> Subscriber:
    """The reader a download token names; InvalidToken when expired, forged or altered."""
    uid = tokens.unsign_timed(tokens.DATA_EXPORT, token, max_age=DATA_LINK_TTL_HOURS * 3600)
    return subscribers.subscriber_by_uid(session, uid)


def may_ask(subscriber: Subscriber) -> bool:
    """True when a data mail may go now (at most one per ASK_AGAIN_SECONDS per reader)."""
    return throttle.once_per(f"data-export:{subscriber.uid}", ASK_AGAIN_SECONDS)


def send_data_link(session: Session, subscriber_id: int, refusals: RefusalPolicy) -> bool:
    """Mail the reader their download link; False when they are gone or suppressed. A refusal
    goes to `refusals`, the bounce policy."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return False
    settings = get_settings()
    context = {
        "download_url": f"{settings.base_url}/your-data/{data_token(subscriber)}",
        "ttl_hours": DATA_LINK_TTL_HOURS,
    }
    mail = render_template_file(
        "your_data", context, subscriber.language, identity.site_context(session)
    )
    notice = mailer.Notice("your_data", subscriber.email, mail, subscriber_id=subscriber.id)
    return mailer.send(session, notice, refusals).sent


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def reader_data(session: Session, s: Subscriber) -> dict[str, Any]:
    """Everything held about one reader, as plain JSON-ready data."""
    list_names = dict(session.execute(select(MailingList.id, MailingList.name)).all())
    values = personal.reader_values(s.name)  # subjects as this reader got them
    return {
        "reader": {
            "email": s.email,
            "name": s.name,
            "language": s.language,
            "source": s.source,
            "created_at": _when(s.created_at),
        },
        "subscriptions": [
            {
                "list": list_names.get(sub.list_id),
                "status": sub.status.value,
                "subscribed_at": _when(sub.subscribed_at),
                "unsubscribed_at": _when(sub.unsubscribed_at),
            }
            for sub in session.scalars(
                select(Subscription).where(Subscription.subscriber_id == s.id)
            )
        ],
        "tags": list(
            session.scalars(
                select(Tag.name)
                .join(SubscriberTag, SubscriberTag.tag_id == Tag.id)
                .where(SubscriberTag.subscriber_id == s.id)
            )
        ),
        "consent_records": [
            {
                "action": c.action,
                "lists": [list_names.get(i) for i in c.list_ids],
                "at": _when(c.created_at),
                "ip": c.ip,
                "user_agent": c.user_agent,
                "form": c.form,
                "consent_text": c.consent_text,
                "confirmed_at": _when(c.confirmed_at),
            }
            for c in session.scalars(
                select(ConsentRecord).where(ConsentRecord.subscriber_id == s.id)
            )
        ],
        "mails_sent": [
            {"subject": shown(subject, values), "status": status.value, "sent_at": _when(sent_at)}
            for subject, status, sent_at in session.execute(
                select(Alert.frozen_subject, Delivery.status, Delivery.sent_at)
                .join(Alert, Alert.id == Delivery.alert_id)
                .where(Delivery.subscriber_id == s.id)
                .order_by(Delivery.id)
            )
        ],
        "clicks": [
            {"mail": shown(subject, values), "link": n, "at": _when(at)}
            for subject, n, at in session.execute(
                select(Alert.frozen_subject, Click.link_index, Click.clicked_at)
                .join(Alert, Alert.id == Click.alert_id)
                .where(Click.subscriber_id == s.id)
                .order_by(Click.id)
            )
        ],
        "signatures": [
            {
                "petition": title,
                "name": sig.name,
                "country": sig.country,
                "comment": sig.comment,
                "signed_at": _when(sig.created_at),
                "confirmed_at": _when(sig.confirmed_at),
            }
            for sig, title in session.execute(
                select(Signature, Petition.title)
                .join(Petition, Petition.id == Signature.petition_id)
                .where(or_(Signature.subscriber_id == s.id, Signature.email == s.email))
            )
        ],
        "bounces": [
            {"at": _when(b.received_at), "kind": b.classification.value, "reason": b.reason}
            for b in session.scalars(
                select(Bounce).where(or_(Bounce.subscriber_id == s.id, Bounce.email == s.email))
            )
        ],
        "suppressed": subscribers.is_suppressed(session, s.email),
    }


def reader_data_json(session: Session, subscriber: Subscriber) -> str:
    """The reader's data as an indented JSON document."""
    return json.dumps(reader_data(session, subscriber), ensure_ascii=False, indent=2)
