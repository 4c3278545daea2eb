"""The mail that asks a signer to confirm their address before the signature counts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from clarion.actions import signing
from clarion.alerts import identity
from clarion.alerts.rendering import RenderedMail, SiteContext, render_template_file
from clarion.audience.erasure import ERASED_SIGNATURE
from clarion.config import get_settings
from clarion.delivery import mailer, owed
from clarion.delivery.refusals import RefusalPolicy
from clarion.models import Petition, Signature


def signature_confirmation_mail(
    signature: Signature, petition: Petition, site: SiteContext
) -> RenderedMail:
    """The rendered confirmation mail for one signature, from the campaign in `site`."""
    settings = get_settings()
    token = signing.confirm_token(signature)
    return render_template_file(
        "signature_confirm",
        {
            "name": signature.name,
            "petition_title": petition.title,
            "confirm_url": f"{settings.base_url}/p/{petition.slug}/confirm/{token}",
            "ttl_hours": settings.confirm_ttl_hours,
        },
        signature.language,
        site,
    )


def send_signature_confirmation(
    session: Session, signature_id: int, refusals: RefusalPolicy
) -> bool:
    """Send it if still owed and the signature was neither confirmed nor deleted meanwhile,
    unless mail is suppressed; a refusal goes to `refusals`, the bounce policy. True when it
    was sent."""
    signature = session.get(Signature, signature_id)
    if signature is None or signature.mail_due_at is None:
        return False
    if signature.confirmed_at is not None or signature.email.startswith(ERASED_SIGNATURE):
        owed.settled(signature)  # confirmed by an earlier mail's link, or the signer erased
        return False
    petition = session.get(Petition, signature.petition_id)
    assert petition is not None
    mail = signature_confirmation_mail(signature, petition, identity.site_context(session))
    notice = mailer.Notice("signature_confirm", signature.email, mail)
    outcome = mailer.send(session, notice, refusals)
    owed.settled(signature)  # only now: a crash during the conversation leaves it owed
    return outcome.sent
