"""Transactional notices to readers: the double opt-in confirmation mail."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.alerts import identity
from clarion.alerts.rendering import RenderedMail, render_template_file
from clarion.audience import subscribers
from clarion.config import get_settings
from clarion.delivery import mailer, owed
from clarion.delivery.refusals import RefusalPolicy
from clarion.models import ConsentRecord, MailingList, Subscriber


def confirmation_mail(session: Session, consent: ConsentRecord) -> tuple[str, RenderedMail]:
    """The address and rendered confirmation mail for one consent record."""
    settings = get_settings()
    subscriber = session.get(Subscriber, consent.subscriber_id)
    assert subscriber is not None
    names = session.scalars(
        select(MailingList.name)
        .where(MailingList.id.in_(consent.list_ids))
        .order_by(MailingList.name)
    )
    context = {
        "name": (consent.details or {}).get("name") or "",
        "list_names": list(names),
        "confirm_url": f"{settings.base_url}/confirm/{subscribers.confirm_token(consent)}",
        "ttl_hours": settings.confirm_ttl_hours,
    }
    # The language asked for on the form waits in the consent record until it is confirmed.
    lang = (consent.details or {}).get("language") or subscriber.language
    return subscriber.email, render_template_file(
        "confirm", context, lang, identity.site_context(session)
    )


def send_confirmation(session: Session, consent_id: int, refusals: RefusalPolicy) -> bool:
    """Send the confirmation mail if it is still owed (not sent by another task, not held back
    by the resend guard) and not confirmed meanwhile; nothing to an address suppressed (a hard
    bounce of an earlier one, say: logged, never shown on the sign-up page); a refusal goes to
    `refusals`, the bounce policy. True when it was sent."""
    consent = session.get(ConsentRecord, consent_id)
    if consent is None or consent.mail_due_at is None:
        return False
    if consent.confirmed_at is not None or consent.subscriber_id is None:
        owed.settled(consent)  # confirmed by an earlier mail's link, or the reader erased
        return False
    to, mail = confirmation_mail(session, consent)
    notice = mailer.Notice("confirm", to, mail, subscriber_id=consent.subscriber_id)
    outcome = mailer.send(session, notice, refusals)
    owed.settled(consent)  # only now: a crash during the conversation leaves it owed
    return outcome.sent
