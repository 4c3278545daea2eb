"""Bounce classification rules, VERP tokens, auto-replies and complaints, on built messages."""

from __future__ import annotations

import subprocess
import sys
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from clarion.bounce_classify import BounceClass, classify_files, classify_message, classify_status
from clarion.bounce_classify.verdict import (
    enhanced_status,
    plain_words,
    recipient_verdict,
    reply_code,
)

HARD, SOFT = BounceClass.HARD, BounceClass.SOFT
SENDER_FAULT, DELAY = BounceClass.SENDER_FAULT, BounceClass.DELAY


@pytest.mark.parametrize(
    ("status", "diagnostic", "smtp_code", "expected", "fine"),
    [
        ("5.1.1", "550 5.1.1 <a@example.org>... User unknown", "", HARD, "userunknown"),
        ("", "550 user unknown", "", HARD, "userunknown"),
        ("", "550 No such user here", "550", HARD, "userunknown"),
        ("5.0.0", "550 User unknown", "", HARD, "userunknown"),
        (
            # The server's own 5.7.x says policy, whatever the words: not proof of a dead box.
            "5.7.1",
            "550 5.7.1 <a@x.org>: Recipient address rejected: User unknown",
            "",
            SOFT,
            "filtered",
        ),
        (
            "5.7.1",
            "554 5.7.1 <a@x.org>: Recipient address rejected: Access denied",
            "",
            SOFT,
            "filtered",
        ),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "", HARD, "userunknown"),
        ("5.1.2", "Host or domain name not found", "", HARD, "hostunknown"),
        ("5.2.2", "552 5.2.2 Mailbox full", "", SOFT, "mailboxfull"),
        ("4.2.2", "452 4.2.2 Over quota", "", SOFT, "mailboxfull"),
        (
            "",
            "552 Requested mail action aborted: exceeded storage allocation",
            "552",
            SOFT,
            "mailboxfull",
        ),
        ("5.1.1", "550 5.1.1 Mailbox is full", "", SOFT, "mailboxfull"),
        ("4.7.1", "451 4.7.1 Greylisted, please try again later", "", SOFT, "networkerror"),
        (
            "4.1.1",
            "450 4.1.1 <a@x.org>: Recipient address rejected: User unknown",
            "",
            SOFT,
            "userunknown",
        ),
        ("4.4.7", "Delivery time expired", "", SOFT, "expired"),
        ("5.4.7", "", "", SOFT, "expired"),
        (
            "5.7.1",
            "550 5.7.1 Message rejected due to local policy",
            "",
            SENDER_FAULT,
            "policyviolation",
        ),
        (
            "5.7.1",
            "554 5.7.1 Client host [192.0.2.1] blocked using zen.spamhaus.org",
            "",
            SENDER_FAULT,
            "blocked",
        ),
        (
            "5.7.26",
            "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy",
            "",
            SENDER_FAULT,
            "authfailure",
        ),
        (
            "5.7.1",
            "550 5.7.1 Client host rejected: cannot find your reverse hostname",
            "",
            SENDER_FAULT,
            "requireptr",
        ),
        (
            "5.3.4",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "",
            SENDER_FAULT,
            "mesgtoobig",
        ),
        ("5.7.0", "554 5.7.0 Message rejected as spam", "", SENDER_FAULT, "spamdetected"),
        (
            "",
            "421 Too many connections from your host, slow down",
            "421",
            SENDER_FAULT,
            "toomanyconn",
        ),
        (
            "5.2.1",
            "550 5.2.1 The email account that you tried to reach is disabled",
            "",
            SOFT,
            "suspend",
        ),
        ("5.0.0", "550 Rejected", "", SOFT, "refused"),
        ("", "", "", SOFT, "undefined"),
    ],
)
def test_classify_status(status, diagnostic, smtp_code, expected, fine):
    klass, reason = classify_status(status, diagnostic, smtp_code)
    assert (klass, fine) == (expected, reason.rsplit("[", 1)[1].rstrip("]")), reason


# Each enhanced status rule on its own: the diagnostic says nothing but the code, so no
# text rule can decide in its place (every other case above also has words that would).
@pytest.mark.parametrize(
    ("status", "expected", "fine"),
    [
        ("2.0.0", BounceClass.NOT_A_BOUNCE, "delivered"),
        ("5.2.2", SOFT, "mailboxfull"),
        ("4.2.2", SOFT, "mailboxfull"),
        ("4.4.7", SOFT, "expired"),
        ("5.4.7", SOFT, "expired"),
        ("4.1.1", SOFT, "temporary"),
        ("4.7.1", SOFT, "temporary"),
        ("5.1.1", HARD, "userunknown"),
        ("5.1.10", HARD, "userunknown"),
        ("5.1.11", SOFT, "undefined"),
        ("5.1.2", HARD, "hostunknown"),
        ("5.1.3", HARD, "hostunknown"),
        ("5.4.4", HARD, "hostunknown"),
        ("5.1.4", SOFT, "undefined"),
        ("5.1.6", HARD, "hasmoved"),
        ("5.1.7", SENDER_FAULT, "rejected"),
        ("5.1.8", SENDER_FAULT, "rejected"),
        ("5.2.1", SOFT, "suspend"),
        ("5.2.3", SENDER_FAULT, "mesgtoobig"),
        ("5.3.4", SENDER_FAULT, "mesgtoobig"),
        ("5.6.0", SENDER_FAULT, "contenterror"),
        ("5.7.13", SOFT, "suspend"),
        ("5.7.17", SOFT, "suspend"),
        ("5.7.1", SENDER_FAULT, "policyviolation"),
        ("5.7.12", SENDER_FAULT, "policyviolation"),
        ("5.7.18", SENDER_FAULT, "policyviolation"),
        ("5.7.26", SENDER_FAULT, "policyviolation"),
        ("5.0.0", SOFT, "undefined"),
        ("5.3.0", SOFT, "undefined"),
    ],
)
@pytest.mark.parametrize("where", ["status field", "reply text"])
def test_each_status_code_rule_decides_alone(status, expected, fine, where):
    reply = f"{status[0]}50 {status}"
    if where == "status field":
        klass, reason = classify_status(status, "")
    else:
        klass, reason = classify_status("", reply)
    assert (klass, reason.rsplit("[", 1)[1].rstrip("]")) == (expected, fine), reason


@pytest.mark.parametrize(
    ("text", "status"),
    [
        # In a transcript the failure counts, not the server's earlier successes.
        ("250 2.1.0 Ok\n250 2.1.5 Ok\n550 5.1.1 No such user", "5.1.1"),
        ("250 2.1.5 Ok then 452 4.2.2 Over quota", "4.2.2"),
        # The specific code wins over the generic x.0.0, wherever it stands.
        ("550 5.0.0 Error: 5.1.1 unknown", "5.1.1"),
        ("451 4.0.0 try later", "4.0.0"),
        # Only successes: the first of them; nothing: nothing.
        ("250 2.0.0 Ok: queued as 12345", "2.0.0"),
        ("250 2.1.0 Ok 250 2.1.5 Ok", "2.1.0"),
        ("no code here", ""),
        # Not codes: version numbers, addresses, longer dotted numbers.
        ("Postfix 3.5.1", ""),
        ("host 10.5.1.1 said", ""),
    ],
)
def test_the_telling_status_code_is_found_in_a_text(text, status):
    assert enhanced_status(text) == status


@pytest.mark.parametrize(
    ("args", "expected", "reason"),
    [
        # With no enhanced code, the SMTP reply decides whether the server meant "retry":
        # given apart, or read from the diagnostic; a temporary "user unknown" is never HARD.
        (("", "user unknown", "450"), SOFT, "mailbox does not exist (450) [userunknown]"),
        (("", "450 user unknown"), SOFT, "mailbox does not exist (450) [userunknown]"),
        (("", "user unknown", " 450 "), SOFT, "mailbox does not exist (450) [userunknown]"),
        (("", "user unknown", "550"), HARD, "mailbox does not exist (550) [userunknown]"),
        (("", "550 user unknown"), HARD, "mailbox does not exist (550) [userunknown]"),
        (("", "mailbox unknown"), HARD, "mailbox does not exist [userunknown]"),
        (("5.1.1",), HARD, "mailbox does not exist (5.1.1) [userunknown]"),
        (("", "nothing to see"), SOFT, "unknown failure [undefined]"),
        (("",), SOFT, "unknown failure [undefined]"),
    ],
)
def test_the_smtp_reply_code_decides_when_there_is_no_status(args, expected, reason):
    assert classify_status(*args) == (expected, reason)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("host said: 550-5.1.1 no", "550"),
        ("550", "550"),
        ("first 421 then 550", "421"),
        ("nothing", ""),
        ("x 4.5.1 y", ""),  # an enhanced status is not a reply code
        ("id=5501 port:550", ""),
    ],
)
def test_the_first_smtp_reply_code_is_read(text, code):
    assert reply_code(text) == code


def test_addresses_links_and_long_tokens_leave_the_words_a_rule_reads():
    text = "550 see https://help.example.org/user-unknown?x=1 or <a.b@c.org>  now " + "z" * 85
    assert plain_words(text + " end") == (
        "550 see help.example.org or < <address> > now <token> end"
    )
    assert plain_words("ftp://x.org/a") == " x.org "
    assert plain_words("z" * 79) == "z" * 79
    # Words in a link's path never decide: this is a refusal, not a dead mailbox.
    assert classify_status("", "550 refused, see https://help.example.org/mailbox-unknown") == (
        SOFT,
        "refused without a stated reason (550) [refused]",
    )


UNKNOWN = "550 User unknown"


@pytest.mark.parametrize(
    ("status", "diagnostic", "context", "verdict"),
    [
        # Uncorroborated: no code, no stage, no directory's own words.
        ("", UNKNOWN, "", (SOFT, "unconfirmed")),
        # Refused after the body was sent: a content filter, not a mailbox check.
        ("", UNKNOWN, ">>> DATA\n<<< 550 User unknown", (SOFT, "filtered")),
        ("", UNKNOWN, "in reply to end of DATA command", (SOFT, "filtered")),
        ("", UNKNOWN, "after end of data", (SOFT, "filtered")),
        ("", UNKNOWN, "failed after I sent the message", (SOFT, "filtered")),
        # Pipelined RCPT refusals also print DATA; the DATA reply says no valid recipient.
        ("", UNKNOWN, ">>> DATA\n<<< 503 need RCPT command", (HARD, "userunknown")),
        # At RCPT TO: the command that checks a mailbox.
        ("", UNKNOWN, "in reply to RCPT TO command", (HARD, "userunknown")),
        ("", UNKNOWN, "smtp:rcpt", (HARD, "userunknown")),
        ("", UNKNOWN, "does not like recipient", (HARD, "userunknown")),
        ("", UNKNOWN, "[rcpt_to]", (HARD, "userunknown")),
        ("", UNKNOWN, "after RCPT", (HARD, "userunknown")),
        # A directory's own wording corroborates by itself, one phrase of each line.
        ("", "User unknown in local recipient table", "", (HARD, "userunknown")),
        ("", "User unknown: not listed in Domino Directory", "", (HARD, "userunknown")),
        ("", "user unknown: Recipient name is not recognized", "", (HARD, "userunknown")),
        ("", "user unknown: no mailbox here by that name", "", (HARD, "userunknown")),
        (
            "",
            "550 user unknown: the email account that you tried to reach does not exist",
            "",
            (HARD, "userunknown"),
        ),
        ("", "user unknown because the address couldn't be found", "", (HARD, "userunknown")),
        ("", "user unknown invalid final delivery userid", "", (HARD, "userunknown")),
        # Codes: the generic 5.0.0 needs the reply to echo the address; 5.2.x says the
        # mailbox exists; the server's own 5.7.x is its policy.
        ("5.0.0", "550 5.0.0 <a@b.org>... User unknown", "", (HARD, "userunknown")),
        ("5.0.0", "550 5.0.0 User unknown", "", (SOFT, "unconfirmed")),
        ("5.2.0", "550 5.2.0 User unknown", "", (SOFT, "unconfirmed")),
        ("5.7.1", "550 5.7.1 User unknown", "", (SOFT, "filtered")),
        # A 5.1.x code corroborates even in a DATA-stage transcript.
        ("5.1.1", "550 5.1.1 User unknown", ">>> DATA", (HARD, "userunknown")),
        # The stage may be named across the diagnostic and the notice around it.
        ("", "550 User unknown, in reply to", "end of DATA command", (SOFT, "filtered")),
        # No code given apart: the diagnostic's own reply code says "try again".
        ("", "450 User unknown", "", (SOFT, "userunknown")),
    ],
)
def test_a_user_unknown_is_hard_only_when_corroborated(status, diagnostic, context, verdict):
    assert recipient_verdict("a@b.org", status, diagnostic, context)[:2] == verdict


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected", "fine"),
    [
        # A disabled mailbox with 5.1.1 (bad mailbox) is gone for good; with 5.2.1 it may return.
        ("5.1.1", "550 5.1.1 account disabled", HARD, "userunknown"),
        ("5.2.1", "550 5.2.1 account disabled", SOFT, "suspend"),
        # A success is a success, whatever its words.
        ("2.0.0", "250 2.0.0 user unknown", BounceClass.NOT_A_BOUNCE, "delivered"),
        # A bare "rejected" is weaker than any status code, and stands alone without one.
        ("5.1.1", "550 5.1.1 rejected", HARD, "userunknown"),
        ("", "550 rejected", SOFT, "refused"),
    ],
)
def test_how_words_and_codes_combine(status, diagnostic, expected, fine):
    klass, reason = classify_status(status, diagnostic)
    assert (klass, reason.rsplit("[", 1)[1].rstrip("]")) == (expected, fine)


def test_classify_status_reason_is_readable():
    klass, reason = classify_status("5.1.1", "550 5.1.1 User unknown")
    assert klass is HARD
    assert reason == "mailbox does not exist (5.1.1) [userunknown]"


def test_success_status_is_not_a_bounce():
    assert classify_status("2.0.0", "250 2.0.0 OK")[0] is BounceClass.NOT_A_BOUNCE


def test_an_address_in_the_diagnostic_never_triggers_a_rule():
    # The local part reads "user unknown", but the server only asked us to retry later.
    klass, _ = classify_status("", "451 <user-unknown@example.org>: try again later", "451")
    assert klass is SOFT


# ---------------------------------------------------------------------------------------------
# Whole messages
# ---------------------------------------------------------------------------------------------


def _original(to: str = "reader@example.org") -> EmailMessage:
    original = EmailMessage()
    original["From"] = "Alerts <alerts@campaign.example>"
    original["To"] = to
    original["Subject"] = "Free them now"
    original["Message-ID"] = "<alert-1@campaign.example>"
    original["List-Unsubscribe"] = "<mailto:unsubscribe+tok42@bounce.campaign.example>"
    original["List-Id"] = "<alerts.campaign.example>"
    original.set_content("Sign the petition.")
    return original


def _dsn(blocks: str, to: str = "b+tok42@bounce.campaign.example") -> bytes:
    """A Postfix-style RFC 3464 report; the email package cannot build delivery-status parts."""
    original = _original().as_string()
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n"
        f"To: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n"
        "I'm sorry to have to inform you that your message could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.org\n\n{blocks}\n"
        f"--B\nContent-Type: message/rfc822\n\n{original}\n--B--\n"
    ).encode()


def test_rfc3464_dsn_reports_each_recipient():
    raw = _dsn(
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown\n\n"
        "Final-Recipient: rfc822; slow@example.net\nAction: delayed\nStatus: 4.4.7\n"
    )
    report = classify_message(raw)
    assert report.classification is HARD
    assert [(r.recipient, r.classification, r.status) for r in report.recipients] == [
        ("gone@example.org", HARD, "5.1.1"),
        ("slow@example.net", DELAY, "4.4.7"),
    ]
    assert report.verp_tokens == ("tok42",)
    assert (
        report.original_headers["List-Unsubscribe"]
        == "<mailto:unsubscribe+tok42@bounce.campaign.example>"
    )
    assert report.original_headers["Message-ID"] == "<alert-1@campaign.example>"


def test_dsn_delivered_action_is_not_a_bounce():
    raw = _dsn("Final-Recipient: rfc822; ok@example.org\nAction: delivered\nStatus: 2.0.0\n")
    report = classify_message(raw)
    assert report.classification is BounceClass.NOT_A_BOUNCE
    assert report.recipients[0].recipient == "ok@example.org"


def test_original_recipient_is_preferred_to_final_recipient():
    raw = _dsn(
        "Final-Recipient: rfc822; mailbox17@internal.example.org\n"
        "Original-Recipient: rfc822; Reader@Example.org\nAction: failed\nStatus: 5.2.2\n"
    )
    assert classify_message(raw).recipients[0].recipient == "reader@example.org"


def test_exim_text_bounce():
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
        b"To: b+tok7@bounce.campaign.example\n"
        b"X-Failed-Recipients: gone@example.net\n"
        b"Auto-Submitted: auto-replied\n"
        b"Subject: Mail delivery failed: returning message to sender\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"A message that you sent could not be delivered to one or more of its\n"
        b"recipients. This is a permanent error. The following address(es) failed:\n\n"
        b"  gone@example.net\n"
        b"    SMTP error from remote mail server after RCPT TO:<gone@example.net>:\n"
        b"    host mx.example.net [192.0.2.1]: 550 5.1.1 <gone@example.net>: User unknown\n\n"
        b"------ This is a copy of the message, including all the headers. ------\n\n"
        b"From: alerts@campaign.example\nTo: gone@example.net\nSubject: Hi\n\nHello\n"
    )
    report = classify_message(raw)
    assert report.classification is HARD
    assert [r.recipient for r in report.recipients] == ["gone@example.net"]
    assert report.recipients[0].status == "5.1.1"
    assert "User unknown" in report.recipients[0].diagnostic
    assert report.verp_tokens == ("tok7",)


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected", "fine"),
    [
        # A bare "No such user" under the generic 5.0.0: the words alone do not remove a reader.
        ("5.0.0", "550 gone@example.org... No such user", SOFT, "unconfirmed"),
        # The reply repeats <address>, the shape of an answer to RCPT TO: corroborated.
        ("5.0.0", "550 <gone@example.org>... User unknown", HARD, "userunknown"),
        ("5.0.0", "550 5.7.1 550 User Unknown: gone@example.org", SOFT, "filtered"),
        ("5.1.1", "550 5.1.1 No such user", HARD, "userunknown"),
    ],
)
def test_user_unknown_in_a_dsn_needs_corroboration(status, diagnostic, expected, fine):
    raw = _dsn(
        f"Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
    )
    [recipient] = classify_message(raw).recipients
    assert (recipient.classification, recipient.reason.rsplit("[", 1)[1]) == (expected, fine + "]")


def test_a_report_that_contradicts_itself_is_not_hard():
    raw = _dsn(
        "Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <reader@example.org>... User Unknown\n"
    ).replace(b"your message could not be delivered.", b"was rejected:\nNot enough disk space")
    [recipient] = classify_message(raw).recipients
    assert recipient.classification is SOFT
    assert recipient.reason.endswith("[conflicting]")


def test_a_transcript_is_not_read_for_a_recipient_it_does_not_name():
    # Two recipients; the notice's pipelined RCPT transcript names only the first one.
    raw = _dsn(
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; other@example.net\nAction: failed\nStatus: 5.2.1\n"
        "Diagnostic-Code: smtp; 550 5.2.1 <other@example.net>... User Unknown\n"
    ).replace(
        b"could not be delivered.",
        b"could not be delivered.\n>>> DATA\n<<< 550 5.1.1 <gone@example.org>... User unknown"
        b"\n<<< 503 5.0.0 Need RCPT (recipient)",
    )
    found = {r.recipient: r.classification for r in classify_message(raw).recipients}
    assert found == {"gone@example.org": HARD, "other@example.net": SOFT}


def test_user_unknown_after_data_is_a_filter_not_a_dead_mailbox():
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\nTo: alerts@campaign.example\n"
        b"Subject: failure notice\n\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        b"<reader@example.jp>:\n"
        b"192.0.2.1 failed after I sent the message.\n"
        b"Remote host said: 550 Unknown user reader@example.jp\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        b"From: alerts@campaign.example\nTo: reader@example.jp\n\nHi\n"
    )
    report = classify_message(raw)
    assert report.classification is SOFT
    assert report.recipients[0].reason.endswith("[filtered]")


def _arf(
    original_rcpt_to: str | None = "reader@example.org", to: str = "reader@example.org"
) -> MIMEMultipart:
    report = MIMEMultipart("report", report_type="feedback-report")
    report.attach(MIMEText("This is an email abuse report."))
    fields = "Feedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1\n"
    if original_rcpt_to:
        fields += f"Original-Rcpt-To: {original_rcpt_to}\n"
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload(fields)
    report.attach(feedback)
    report.attach(MIMEMessage(_original(to)))
    return report


def test_arf_complaint_inside_multipart_mixed():
    outer = MIMEMultipart("mixed")
    outer["From"] = "fbl@isp.example"
    outer["To"] = "abuse@campaign.example"
    outer["Subject"] = "Fwd: complaint"
    outer.attach(MIMEText("Forwarded feedback report below."))
    outer.attach(_arf())
    report = classify_message(outer.as_bytes())
    assert report.classification is BounceClass.COMPLAINT
    [complaint] = report.recipients
    assert (complaint.recipient, complaint.feedback_type) == ("reader@example.org", "abuse")
    assert (
        report.original_headers["List-Unsubscribe"]
        == "<mailto:unsubscribe+tok42@bounce.campaign.example>"
    )


def test_arf_forwarded_as_an_attached_message():
    arf = _arf()
    arf["From"] = "fbl@isp.example"
    arf["Subject"] = "Abuse report"
    outer = MIMEMultipart("mixed")
    outer["From"] = "postmaster@campaign.example"
    outer["Subject"] = "Fwd: Abuse report"
    outer.attach(MIMEText("See attached."))
    outer.attach(MIMEMessage(arf))
    report = classify_message(outer.as_bytes())
    assert report.classification is BounceClass.COMPLAINT
    assert report.recipients[0].recipient == "reader@example.org"


def test_arf_without_original_rcpt_to_uses_the_original_message():
    report = classify_message(_arf(original_rcpt_to=None).as_bytes())
    assert report.recipients[0].recipient == "reader@example.org"


@pytest.mark.parametrize("redacted", ["<Undisclosed Recipients>", '"undisclosed"', ""])
def test_a_redacted_arf_complaint_names_no_one_rather_than_an_empty_address(redacted):
    # Feedback loops that redact the reader leave no address anywhere (as in the corpus's
    # sisimai/arf-11 and stalwart-arf/001): the recipient is unknown, never "".
    report = classify_message(_arf(original_rcpt_to=None, to=redacted).as_bytes())
    assert report.classification is BounceClass.COMPLAINT
    [complaint] = report.recipients
    assert (complaint.recipient, complaint.feedback_type) == (None, "abuse")
    # The Message-ID of our original is still there for the policy to find the delivery by.
    assert report.original_headers["Message-ID"] == "<alert-1@campaign.example>"


def _plain(subject: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Reader <reader@example.org>"
    message["To"] = "b+tok9@bounce.campaign.example"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("I am away until Monday.")
    return message.as_bytes()


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Re: Free them now", {"Auto_Submitted": "auto-replied"}),
        ("Out of office: Free them now", {}),
        ("Automatic reply: Free them now", {}),
        ("Abwesenheitsnotiz: Free them now", {}),
        ("Re: Free them now", {"X_Autoreply": "yes"}),
    ],
)
def test_autoreplies_are_recognised_and_ignored(subject, headers):
    report = classify_message(_plain(subject, **headers))
    assert report.classification is BounceClass.AUTOREPLY
    assert report.recipients[0].recipient == "reader@example.org"


def test_an_ordinary_message_is_not_a_bounce():
    report = classify_message(_plain("Re: Free them now"))
    assert report.classification is BounceClass.NOT_A_BOUNCE
    assert report.recipients == ()


def test_verp_tokens_from_envelope_and_headers():
    message = EmailMessage()
    message["From"] = "MAILER-DAEMON@mx.example.org"
    message["To"] = "Bounces <b+tok.1_A=b@bounce.campaign.example>, bob+news@example.org"
    message["Delivered-To"] = "b+tok2@bounce.campaign.example"
    message["X-Original-To"] = "b+tok2@bounce.campaign.example"
    message["Subject"] = "hello"
    message.set_content("hello")
    tokens = classify_message(message.as_bytes(), ["B+env-3@bounce.campaign.example"]).verp_tokens
    assert tokens == ("env-3", "tok.1_A=b", "tok2")


def test_garbage_does_not_raise():
    assert classify_message(b"").classification is BounceClass.NOT_A_BOUNCE
    assert classify_message(b"\x00\xff garbage").classification is BounceClass.NOT_A_BOUNCE
    # A report without a boundary is still read as a report, but never as a dead mailbox.
    broken = b"Content-Type: multipart/report\n\nno boundary"
    assert classify_message(broken).classification is SOFT


def test_classify_files(tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(
        _dsn("Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n")
    )
    [row] = classify_files([path])
    assert row["file"] == str(path)
    assert row["recipients"] == ["gone@example.org"]
    assert row["class"] == "hard"
    assert row["status"] == "5.1.1"
    assert "userunknown" in row["reason"]


def test_the_module_imports_neither_flask_nor_celery():
    code = (
        "import sys, clarion.bounce_classify; "
        "sys.exit(any(m in sys.modules for m in ('flask', 'celery')))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "body",
    [
        b" " * 200_000 + b"reader@example.org\n",
        b"\n" * 200_000 + b"x",
        (b"a" * 50_000 + b"@" + b"b." * 5_000 + b"\n") * 3,
        b"user" * 50_000 + b" does not exist\n",
        b"<script>" * 50_000,
    ],
)
def test_hostile_input_is_read_in_linear_time(body):
    # Anyone can mail the bounce address; a quadratic regex would stall the worker.
    head = b"From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail\n"
    ctype = b"Content-Type: text/html\n\n" if body.startswith(b"<") else b"\n"
    assert classify_message(head + ctype + body).classification is not HARD


def test_the_command_prints_one_json_line_per_file(tmp_path):
    import json

    from click.testing import CliRunner

    from clarion.cli import main

    hard = tmp_path / "hard.eml"
    hard.write_bytes(
        _dsn("Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n")
    )
    reply = tmp_path / "reply.eml"
    reply.write_bytes(_plain("Automatic reply: Free them now"))
    result = CliRunner().invoke(main, ["bounces", "classify", str(hard), str(reply)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [list(r) for r in rows] == [["file", "recipients", "class", "status", "reason"]] * 2
    assert rows[0]["class"] == "hard" and rows[0]["recipients"] == ["gone@example.org"]
    assert (rows[1]["file"], rows[1]["class"]) == (str(reply), "autoreply")
    missing = CliRunner().invoke(main, ["bounces", "classify", str(tmp_path / "nope.eml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    ("sample", "recipient"),
    [
        # Hand-written in the formats of these MTAs (example.org addresses): each names the
        # failed reader in its own way, and the returned original carries no To to fall back on.
        ("exchange-5.5.eml", "jane.doe@example.org"),  # X.400 "dda:SMTP=…; on <date>"
        ("exchange-2000.eml", "ivan.petrov@example.org"),  # display name, then "SMTP=…"
        ("aol.eml", "examplereader@aol.com"),  # bare screen name under the sentence
        ("smtp32.eml", "anna.kowalska@example.org"),  # "Delivery failed 3 attempts: …"
        ("smtp32-unknown.eml", "omar@example.org"),  # "Unknown user: …"
        # "undeliverable to …" after a block that looks like headers (it cut the notice short)
        ("smtp32-undeliverable.eml", "petra.novak@example.org"),
        ("yale.eml", "ksmith@mr.example.org"),  # "Message not delivered to the following:"
        ("sendmail-old.eml", "maria@host.example.org"),  # bare local part, "permanent fatal"
        ("sendmail-smi.eml", "li.wei@example.org"),  # SMI-8.6 transcript
    ],
)
def test_older_formats_name_the_failed_address(sample, recipient):
    report = classify_message((SAMPLES / sample).read_bytes())
    assert [r.recipient for r in report.recipients] == [recipient]
    assert report.classification in (HARD, SOFT)
    assert report.verp_tokens


def test_a_bare_local_part_takes_the_domain_the_notice_gives_it():
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>\n"
        b"To: b+tok9@bounce.campaign.example\nSubject: Returned mail: User unknown\n\n"
        b"   ----- The following addresses had permanent fatal errors -----\n"
        b"maria\n\n   ----- Transcript of session follows -----\n"
        b"... while talking to mx.example.org.:\n>>> RCPT To:<maria@example.org>\n"
        b"<<< 550 5.1.1 <maria@example.org>... User unknown\n"
    )
    report = classify_message(raw)
    assert [r.recipient for r in report.recipients] == ["maria@example.org"]
    assert report.classification is HARD


def test_an_exim_file_delivery_names_the_address_that_generated_it():
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.org>\n"
        b"To: b+tok8@bounce.campaign.example\nSubject: Mail delivery failed\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
        b" boundary=B\n\n--B\nContent-Type: text/plain\n\n"
        b"The following address(es) failed:\n\n  save to /var/mail/spool/reader\n"
        b"    generated by reader@example.org\n    mailbox is full: retry timeout exceeded\n\n"
        b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        b"Action: failed\nFinal-Recipient: rfc822;/var/mail/spool/reader\nStatus: 5.0.0\n\n--B--\n"
    )
    report = classify_message(raw)
    assert [r.recipient for r in report.recipients] == ["reader@example.org"]
