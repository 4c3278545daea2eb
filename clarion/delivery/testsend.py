"""Test sends: an alert, subject marked [Test], to a few addresses typed by the editor.

They leave through the transactional mailer (signed, VERP envelope), so they live here beside
it rather than with the drafts (`clarion.alerts.campaigns`): drafts sit below delivery and may
not send mail.
"""

from __future__ import annotations

from email.utils import formataddr

from sqlalchemy.orm import Session

from clarion import audit, throttle
from clarion.addresses import normalise_email
from clarion.alerts import versions
from clarion.alerts.campaigns import neutral_recipient, render_preview
from clarion.alerts.personal import reader_values
from clarion.alerts.rendering import RenderedMail
from clarion.config import get_settings
from clarion.delivery import mailer
from clarion.delivery.messages import greeting_for
from clarion.delivery.smtpclient import SmtpConnectionError
from clarion.editors import require
from clarion.errors import Unsendable, ValidationError
from clarion.i18n import admin_gettext
from clarion.inputs import header_text
from clarion.models import Alert, Editor, MailingList

MAX_TEST_ADDRESSES = 10
TESTS_PER_HOUR = "30/hour"
# Not "[TEST]": with a subject in Cyrillic those four letters are all SpamAssassin sees of it,
# and it scores the subject as all capitals (SUBJ_ALL_CAPS).
TEST_PREFIX = "[Test] "


def recipients_for_test(raw: str) -> list[str]:
    """The addresses typed for a test send, checked; ValidationError says which is wrong."""
    parts = [p for p in raw.replace(";", ",").replace("\n", ",").split(",") if p.strip()]
    parts = [w for p in parts for w in p.split()]
    if not parts:
        raise ValidationError(
            {"test_to": admin_gettext("Give at least one address to send the test to.")}
        )
    if len(parts) > MAX_TEST_ADDRESSES:
        raise ValidationError(
            {"test_to": admin_gettext("At most %(n)s addresses per test.", n=MAX_TEST_ADDRESSES)}
        )
    return [normalise_email(p, "test_to") for p in parts]


def render_for_reader(
    session: Session, alert: Alert, language: str | None = None, name: str | None = None
) -> RenderedMail:
    """The alert (its version in `language`, else the primary) as the send path writes it for
    a reader called `name` (greeting and personalisation fields; None: a reader without a
    name), with links that identify nobody: what the composer previews and tests send."""
    lang = versions.content(alert, language)[1]
    recipient = {
        **neutral_recipient(get_settings().base_url, lang),
        "greeting": greeting_for(name, lang),
    }
    return render_preview(session, alert, language, recipient, reader_values(name))


def send_test(
    session: Session,
    editor: Editor,
    alert: Alert,
    raw_addresses: str,
    ip: str | None = None,
    language: str | None = None,
    name: str | None = None,
) -> list[str]:
    """Send the alert (its version in `language`, else the primary, for a reader called
    `name`), subject marked [Test], to the given addresses: no Delivery rows, no stats.
    An editor may send TESTS_PER_HOUR tests an hour."""
    require(editor, "compose")
    addresses = recipients_for_test(raw_addresses)
    if not throttle.hit(TESTS_PER_HOUR, "test-send", str(editor.id)):
        raise ValidationError(
            {
                "test_to": admin_gettext(
                    "Too many test sends in the last hour (at most %(limit)s): wait a while.",
                    limit=TESTS_PER_HOUR.split("/")[0],
                )
            }
        )
    mail = render_for_reader(session, alert, language, name)
    marked = RenderedMail(TEST_PREFIX + mail.subject, mail.html, mail.text, mail.language)
    sender = session.get(MailingList, alert.sender_list_id) if alert.sender_list_id else None
    from_ = None
    if sender is not None and sender.from_email:
        from_ = formataddr((header_text(sender.from_name or ""), sender.from_email))
    reply_to = sender.reply_to if sender is not None else None
    for address in addresses:
        notice = mailer.Notice("test", address, marked, sender=from_, reply_to=reply_to, test=True)
        try:
            # No bounce policy: a refused test address is told to the editor at once; a bounce
            # returned later still reaches the policy by the mail's VERP token.
            sent = mailer.send(session, notice, None)
        except (Unsendable, mailer.NoticeDeferred) as exc:  # nothing to retry in a request
            raise ValidationError({"test_to": str(exc)}) from None
        except SmtpConnectionError as exc:
            problem = admin_gettext("The mail server is not reachable: %(error)s", error=exc)
            raise ValidationError({"test_to": problem}) from None
        if not sent.sent:
            problem = admin_gettext(
                "Not sent to %(address)s: %(reason)s", address=address, reason=sent.reason
            )
            raise ValidationError({"test_to": problem})
    audit.record(
        session,
        editor,
        "alert.test_send",
        f"alert:{alert.id or 'unsaved'}",
        ip,
        to=addresses,
        language=mail.language,
    )
    return addresses
