"""Test sends: an alert, subject marked [TEST], to a few addresses typed by the editor.

They leave through the transactional mailer, so they live here beside it rather than with the
drafts (`clarion.alerts.campaigns`): drafts sit below delivery and may not send mail.
"""

from __future__ import annotations

from email.utils import formataddr

from sqlalchemy.orm import Session

from clarion import audit
from clarion.addresses import normalise_email
from clarion.alerts.campaigns import render_preview
from clarion.alerts.rendering import RenderedMail
from clarion.delivery import mailer
from clarion.editors import require
from clarion.errors import Unsendable, ValidationError
from clarion.i18n import admin_gettext
from clarion.inputs import header_text
from clarion.models import Alert, Editor, MailingList

MAX_TEST_ADDRESSES = 10
TEST_PREFIX = "[TEST] "


def recipients_for_test(raw: str) -> list[str]:
    """The addresses typed for a test send, checked; ValidationError says which is wrong."""
    parts = [p for p in raw.replace(";", ",").replace("\n", ",").split(",") if p.strip()]
    parts = [w for p in parts for w in p.split()]
    if not parts:
        raise ValidationError(
            {"test_to": admin_gettext("Give at least one address to send the test to.")}
        )
    if len(parts) > MAX_TEST_ADDRESSES:
        raise ValidationError({"test_to": f"At most {MAX_TEST_ADDRESSES} addresses per test."})
    return [normalise_email(p, "test_to") for p in parts]


def send_test(
    session: Session, editor: Editor, alert: Alert, raw_addresses: str, ip: str | None = None
) -> list[str]:
    """Send the alert, subject marked [TEST], to the given addresses: no Delivery rows, no stats."""
    require(editor, "compose")
    addresses = recipients_for_test(raw_addresses)
    mail = render_preview(session, alert)
    marked = RenderedMail(TEST_PREFIX + mail.subject, mail.html, mail.text)
    sender = session.get(MailingList, alert.sender_list_id) if alert.sender_list_id else None
    for address in addresses:
        message = mailer.build_transactional(
            address, marked, extra_headers={"X-Clarion-Test": "yes"}
        )
        if sender is not None and sender.from_email:
            name = header_text(sender.from_name or "")
            message.replace_header("From", formataddr((name, sender.from_email)))
        if sender is not None and sender.reply_to:
            message["Reply-To"] = header_text(sender.reply_to)
        try:
            mailer.send_transactional(message)
        except Unsendable as exc:  # the editor can pick another address; nothing to retry
            raise ValidationError({"test_to": str(exc)}) from None
    audit.record(session, editor, "alert.test_send", f"alert:{alert.id}", ip, to=addresses)
    return addresses
