"""Data minimisation: what Clarion deletes once it has no reason to keep it.

Run hourly from beat (tasks.maintenance.purge_expired); the owners' privacy page shows the
policy (`policy()`) and the last run (`last_run()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, distinct, exists, func, or_, select, update
from sqlalchemy.orm import Session

from clarion.config import get_settings
from clarion.db import insert_for, utcnow
from clarion.i18n import NA_, admin_gettext
from clarion.models import (
    AppSetting,
    Bounce,
    Click,
    ClickCount,
    ConsentRecord,
    IdempotentRequest,
    InboundMessage,
    NoticeMail,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    WebhookEvent,
)

PENDING_DAYS = 30
EVIDENCE_DAYS = 30
# Answers kept for API requests retried with the same Idempotency-Key (they may name a reader).
IDEMPOTENCY_KEEP = timedelta(hours=24)
LAST_RUN_KEY = "retention.last_run"


@dataclass(frozen=True)
class Rule:
    """One line of the retention policy, as the privacy page shows it."""

    what: str
    kept_for: str


def policy() -> list[Rule]:
    """What is kept about readers and for how long, with the configured periods."""
    s = get_settings()
    days = NA_("%(days)s days")
    return [
        Rule(
            admin_gettext("IP addresses and browser names of sign-ups and confirmations"),
            admin_gettext(days, days=s.retain_ip_days),
        ),
        Rule(
            admin_gettext("Which reader clicked which link"),
            admin_gettext("%(days)s days, then per-link counts", days=s.retain_clicks_days),
        ),
        Rule(
            admin_gettext("Sign-ups never confirmed"),
            admin_gettext("%(days)s days, then forgotten entirely", days=PENDING_DAYS),
        ),
        Rule(
            admin_gettext(
                "Answers kept for API requests that may be retried (they may show an address)"
            ),
            admin_gettext("24 hours"),
        ),
        Rule(
            admin_gettext(
                "Returned mail (bounce evidence, inbound messages), the address each "
                "confirmation went to, webhook events and their delivery log"
            ),
            admin_gettext(days, days=EVIDENCE_DAYS),
        ),
        Rule(
            admin_gettext("A click recognising its reader on a petition page"),
            admin_gettext("%(days)s days after the mail", days=s.recognise_days),
        ),
        Rule(
            admin_gettext("Address, name, subscriptions, signatures"),
            admin_gettext("until the reader leaves or erases themselves"),
        ),
        Rule(
            admin_gettext("Consent records of an erased reader"),
            admin_gettext("anonymous: time, lists, keyed hash of the address"),
        ),
    ]


def run(session: Session) -> dict[str, int]:
    """Everything the policy says, in the caller's transaction; the run is recorded."""
    done = {**purge_expired(session), **drop_network_data(session), **aggregate_clicks(session)}
    record = session.get(AppSetting, LAST_RUN_KEY) or AppSetting(key=LAST_RUN_KEY)
    record.value = {"at": utcnow().isoformat(timespec="seconds"), "counts": done}
    session.add(record)
    return done


def last_run(session: Session) -> dict[str, Any] | None:
    """When retention last ran and what it did, or None if never."""
    record = session.get(AppSetting, LAST_RUN_KEY)
    return dict(record.value) if record else None


def drop_network_data(session: Session) -> dict[str, int]:
    """Forget the IP address and user agent of sign-ups and confirmations after retain_ip_days."""
    cutoff = utcnow() - timedelta(days=get_settings().retain_ip_days)
    dropped = session.execute(
        update(ConsentRecord)
        .where(
            ConsentRecord.created_at < cutoff,
            or_(
                ConsentRecord.ip.is_not(None),
                ConsentRecord.user_agent.is_not(None),
                ConsentRecord.confirm_ip.is_not(None),
            ),
        )
        .values(ip=None, user_agent=None, confirm_ip=None)
    ).rowcount
    return {"network_data_dropped": dropped}


def aggregate_clicks(session: Session) -> dict[str, int]:
    """Fold per-reader clicks older than retain_clicks_days into per-link counts."""
    cutoff = utcnow() - timedelta(days=get_settings().retain_clicks_days)
    old = Click.clicked_at < cutoff
    rows = session.execute(
        select(
            Click.alert_id,
            Click.link_index,
            func.count().filter(Click.suspected_scanner.is_(False)),
            func.count(distinct(Click.delivery_id)).filter(Click.suspected_scanner.is_(False)),
            func.count().filter(Click.suspected_scanner.is_(True)),
        )
        .where(old)
        .group_by(Click.alert_id, Click.link_index)
    ).all()
    for alert_id, link_index, clicks, unique, scanner in rows:
        insert = insert_for(session)(ClickCount.__table__).values(
            alert_id=alert_id,
            link_index=link_index,
            clicks=clicks,
            unique_clicks=unique,
            scanner_clicks=scanner,
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["alert_id", "link_index"],
                set_={
                    "clicks": ClickCount.__table__.c.clicks + insert.excluded.clicks,
                    "unique_clicks": ClickCount.__table__.c.unique_clicks
                    + insert.excluded.unique_clicks,
                    "scanner_clicks": ClickCount.__table__.c.scanner_clicks
                    + insert.excluded.scanner_clicks,
                },
            )
        )
    folded = session.execute(delete(Click).where(old)).rowcount if rows else 0
    return {"clicks_aggregated": folded}


def purge_expired(session: Session) -> dict[str, int]:
    """Forget sign-ups never confirmed in PENDING_DAYS; drop bounce evidence (and the processed
    inbound messages it came from) and the record of transactional mails after EVIDENCE_DAYS."""
    now = utcnow()
    cutoff = now - timedelta(days=PENDING_DAYS)
    # Someone who signed up on the web, never confirmed, and has no other standing is forgotten
    # entirely; imported pending rows are the importing editor's to manage.
    only_pending = (
        select(Subscriber.id)
        .where(Subscriber.created_at < cutoff)
        .where(
            exists().where(
                ConsentRecord.subscriber_id == Subscriber.id, ConsentRecord.action == "subscribe"
            )
        )
        .where(
            ~exists().where(
                Subscription.subscriber_id == Subscriber.id,
                Subscription.status != SubscriptionStatus.PENDING,
            )
        )
        .where(
            ~exists().where(
                ConsentRecord.subscriber_id == Subscriber.id,
                ConsentRecord.confirmed_at.is_not(None),
            )
        )
    )
    ids = list(session.scalars(only_pending))
    forgotten = 0
    if ids:
        forgotten = session.execute(delete(Subscriber).where(Subscriber.id.in_(ids))).rowcount
    evidence = session.execute(
        update(Bounce)
        .where(
            Bounce.received_at < now - timedelta(days=EVIDENCE_DAYS), Bounce.evidence.is_not(None)
        )
        .values(evidence=None)
    ).rowcount
    inbound = session.execute(
        delete(InboundMessage).where(
            InboundMessage.received_at < now - timedelta(days=EVIDENCE_DAYS),
            InboundMessage.processed_at.is_not(None),
        )
    ).rowcount
    # Which address a confirmation went to: needed only while its bounce may come back.
    notices = session.execute(
        delete(NoticeMail).where(NoticeMail.created_at < now - timedelta(days=EVIDENCE_DAYS))
    ).rowcount
    answers = session.execute(
        delete(IdempotentRequest).where(IdempotentRequest.created_at < now - IDEMPOTENCY_KEEP)
    ).rowcount
    # Long past their 24 hours of retries; their delivery log goes with them (ON DELETE CASCADE).
    hooks = session.execute(
        delete(WebhookEvent).where(WebhookEvent.created_at < now - timedelta(days=EVIDENCE_DAYS))
    ).rowcount
    return {
        "forgotten_subscribers": forgotten,
        "evidence_purged": evidence,
        "inbound_purged": inbound,
        "notice_mails_purged": notices,
        "api_answers_purged": answers,
        "webhook_events_purged": hooks,
    }
