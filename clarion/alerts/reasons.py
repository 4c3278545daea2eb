"""Why an alert is in its state: the reasons stored on it, and the same in the editor's words.

A reason is stored in English, as the API and the command line show it; the admin shows it
translated by reading it back against these messages (placeholders and all), so that a reason
stored before an editor switched languages is still shown in theirs.
"""

from __future__ import annotations

from clarion.i18n import NA_, admin_stored

PAUSED_BY_ENGINE = NA_("Paused by the delivery engine.")
PAUSED_BY = NA_("Paused by %(who)s.")
SENDER_FAULT = NA_(
    "Paused: our messages were refused for a policy or authentication reason (%(detail)s). "
    "The problem is our sending — sender address, DKIM or SPF, the relay login or our "
    "reputation — not the readers. Fix it, then resume."
)
CANCELLED_FROM_CLI = NA_("Cancelled by the command line.")
CANCELLED_BY = NA_("Cancelled by %(who)s.")
SCHEDULE_FAILED = NA_("The send scheduled for %(when)s UTC did not start: %(problem)s")
FEED_SCHEDULED = NA_(
    "New post in the feed %(feed)s: it is sent automatically at the time shown unless an "
    "editor cancels it."
)
FEED_CANCELLED = NA_("The automatic send was cancelled by %(who)s.")
# The most specific first: "Paused by the delivery engine." also reads as "Paused by %(who)s.".
KNOWN = (
    PAUSED_BY_ENGINE,
    PAUSED_BY,
    SENDER_FAULT,
    CANCELLED_FROM_CLI,
    CANCELLED_BY,
    SCHEDULE_FAILED,
    FEED_SCHEDULED,
    FEED_CANCELLED,
)


def stored(message: str, **params: object) -> str:
    """A reason as it is stored: the English message with its placeholders filled."""
    return message % params if params else message


def shown(reason: str) -> str:
    """A stored reason in the editor's words (as stored when it is none of the known ones)."""
    return admin_stored(reason, KNOWN)
