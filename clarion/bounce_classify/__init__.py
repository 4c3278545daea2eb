"""Parse bounces, delivery reports, complaints and auto-replies, and classify them (pure).

One inbound message becomes a `Report`: the message-level class, one `RecipientReport` per
failed recipient, the VERP tokens it was addressed to and the headers of the returned original.
Sources are tried from the most to the least machine-readable (`message`): ARF feedback reports
(`complaints`) and provider notifications (`ses`), RFC 3464 delivery-status fields (`dsn`), then
the prose of the ~80 MTA formats that write none (`prose`). Every failure is then judged by
`verdict` with the tables of `rules`: diagnostic text first, because servers often send the
wrong status code, then the enhanced status code. `mime` reads the message's parts.

Owns: parsing and classifying reports, from a whole message or one SMTP reply. Pure: no
database, no network, nothing stored.
May use: the models' enums only. It sits below delivery, which judges each SMTP refusal with
`classify_status` while sending, and below bounces, which classify what comes back.

Public (all that other packages import from it):
    __init__: BounceClass, RecipientReport, Report, classify_files, classify_message,
        classify_status, ses_event_report
    report: CLASS_PRIORITY, known_recipient, message_class, trim
    verdict: enhanced_status
"""

from clarion.bounce_classify.message import classify_files, classify_message
from clarion.bounce_classify.report import RecipientReport, Report
from clarion.bounce_classify.ses import ses_event_report
from clarion.bounce_classify.verdict import classify_status
from clarion.models.inbound import BounceClass

__all__ = [
    "BounceClass",
    "RecipientReport",
    "Report",
    "classify_files",
    "classify_message",
    "classify_status",
    "ses_event_report",
]
