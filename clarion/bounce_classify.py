"""Parse bounces, delivery reports, complaints and auto-replies, and classify them (pure).

One inbound message becomes a `Report`: the message-level class, one `RecipientReport` per
failed recipient, the VERP tokens it was addressed to and the headers of the returned original.
Sources are tried from the most to the least machine-readable: ARF feedback reports and
provider notifications, RFC 3464 delivery-status fields, then the prose of the ~80 MTA formats
that write none. Every failure is then classified by `classify_status`: an ordered table of
diagnostic-text rules (TEXT_RULES) first, because servers often send the wrong status code,
then the enhanced status code (STATUS_RULES). Policy, in short: only a confirmed dead mailbox
or domain is HARD; mailbox full, disabled accounts, time-outs and anything unsure are SOFT;
rejections of our own sending (reputation, authentication, content, rate) are SENDER_FAULT.
"""

from __future__ import annotations

import email
import html
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

from clarion.models.inbound import BounceClass

__all__ = [
    "BounceClass",
    "RecipientReport",
    "Report",
    "classify_files",
    "classify_message",
    "classify_status",
]

# Short names keep the rule tables below readable.
H, S, C, F = BounceClass.HARD, BounceClass.SOFT, BounceClass.COMPLAINT, BounceClass.SENDER_FAULT

# How much of a remote server's diagnostic is kept as evidence.
DIAGNOSTIC_LIMIT = 300
# Real notices are a few kilobytes; reading more only gives hostile input more to chew on.
TEXT_LIMIT = 200_000
RULE_TEXT_LIMIT = 20_000
# Clarion sends one recipient per message; a report naming hundreds is not about us.
RECIPIENT_LIMIT = 100

# Headers kept from the returned original message: they tie a report to a delivery.
ORIGINAL_HEADERS = (
    "Message-ID",
    "X-Clarion-Delivery",
    "List-Id",
    "Feedback-ID",
    "From",
    "To",
    "Subject",
)


@dataclass(frozen=True)
class RecipientReport:
    """What a report says about one recipient."""

    recipient: str
    classification: BounceClass
    status: str
    reason: str
    diagnostic: str
    feedback_type: str = ""


@dataclass(frozen=True)
class Report:
    """What one inbound message says: its class, its recipients and how to find the delivery."""

    classification: BounceClass
    recipients: tuple[RecipientReport, ...]
    verp_tokens: tuple[str, ...]
    original_headers: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The policy: diagnostic text first, then the status code.
# ---------------------------------------------------------------------------------------------


def _rx(*phrases: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in phrases), re.IGNORECASE)


# Ordered: the first rule whose pattern occurs in the diagnostic decides. Mailbox-full comes
# first because servers often say "user" and "full" together; rejections of *our* sender,
# host or authentication come before "unknown"/"not found" because those words also appear in
# "sender domain not found" or "cannot find your hostname".
TEXT_RULES: tuple[tuple[re.Pattern[str], str, BounceClass], ...] = (
    (
        _rx(
            r"mail ?box (?:is |was )?(?:full|over ?quota)",
            r"(?:mailbox|mail ?folder|inbox|account|user|disk|storage|recipient)\S{0,30}"
            r"(?: \S{1,40}){0,3} (?:is |has )?(?:full|over (?:the )?quota)",
            r"(?:mailbox|mail ?folder|inbox|disk|storage) (?:\S{1,40} ){0,2}(?:limit )?exceeded",
            r"quota (?:exceeded|full|violation)",
            r"over ?quota",
            r"exceeds? (?:the )?(?:mailbox|storage|disk) (?:quota|limit|size)",
            r"exceeded (?:storage|the (?:mailbox|storage|quota))",
            r"insufficient (?:disk|system|storage) (?:space|storage)",
            r"not enough (?:storage|disk) space",
            r"mailbox size limit",
            r"too many messages (?:in|on) (?:the |this )?(?:mailbox|user)",
            r"number of messages in .{0,20}mailbox exceeded",
            r"user(?:'s)? (?:mailbox )?(?:has )?(?:exceeded|reached) (?:its|the|their|his|her)",
            r"boite du destinataire pleine",
            r"mailbox (?:is )?(?:exceeding|exceeds)",
        ),
        "mailboxfull",
        S,
    ),
    (
        # An error from a local delivery program is not the server's verdict on the address.
        _rx(r"command output:", r"mailer error", r"procmail:", r"unknown mailer error"),
        "mailererror",
        S,
    ),
    (
        _rx(
            r"sender address rejected",
            r"sender (?:domain|address) (?:\S{1,40} )?(?:is )?"
            r"(?:invalid|unknown|not (?:found|exist|resolv|allowed))",
            r"domain of sender address .{0,80}(?:does not|doesn't) (?:exist|resolve)",
            r"unroutable sender",
            r"sender (?:was |is )?(?:rejected|refused|denied|blocked|not allowed)",
            r"sender verify failed",
            r"(?:invalid|bad|unknown|unverif\w+) (?:sender|mail from|envelope from)",
            r"after (?:mail from|initial connection|helo|ehlo|connect)",
            r"my name was rejected",
            r"mail from (?:address )?(?:rejected|refused|denied)",
            r"(?:your|the) (?:domain|sender) .{0,40}(?:has been|is) (?:blacklisted|blocked|banned)",
        ),
        "rejected",
        F,
    ),
    (
        _rx(
            r"\bspf\b",
            r"\bdkim\b",
            r"\bdmarc\b",
            r"sender policy framework",
            r"domainkeys",
            r"authentication (?:failed|failure|required|check)",
            r"unauthenticated (?:email|mail|sender)",
            r"not authorized to send",
            r"\bauthfailure\b",
        ),
        "authfailure",
        F,
    ),
    (
        _rx(
            r"reverse dns",
            r"\bptr\b",
            r"\brdns\b",
            r"reverse (?:lookup|mapping|resolution)",
            r"cannot find your (?:hostname|reverse)",
            r"(?:client )?host (?:name )?(?:lookup|\[[^\]\s]{1,64}\]) (?:failed|rejected)",
            r"no (?:reverse|ptr) (?:record|dns)",
            r"client host rejected: cannot find",
            r"ip name lookup failed",
            r"(?:unresolvable|does not resolve) .{0,20}(?:client|connecting) ",
            r"hostname (?:does not|doesn't) resolve",
        ),
        "requireptr",
        F,
    ),
    (
        _rx(
            r"black ?list",
            r"block ?list",
            r"\brbl\b",
            r"\bdnsbl\b",
            r"spamhaus",
            r"spamcop",
            r"sorbs",
            r"barracuda ?(?:central|reputation)",
            r"(?<!not )listed (?:in|on|at|by) ",
            r"(?:ip|address|host|server|network).{0,40}(?:is |has been )?(?:black|block|ban)"
            r"(?:listed|ned|ed)\b",
            r"(?:bad|poor|low) (?:ip )?reputation",
            r"reputation",
            r"access denied\W+(?:banned|blocked)",
            r"your (?:ip|server|mail server|host|network)\S{0,30} (?:\S{1,40} ){0,3}"
            r"(?:is |has been )?(?:listed|blocked|blacklisted|banned|rejected|not allowed)",
            r"connection (?:refused|rejected) .{0,30}(?:policy|block)",
            r"blocked using",
            r"\b[45]\d\d[ -](?:[45]\.\d+\.\d+ )?blocked\b",
            r"temporarily (?:deferred|blocked|rate)",
            r"use the smtp server of your isp",
            r"\bdynamic (?:ip|address|pool)",
            r"residential",
            r"dial-?up",
        ),
        "blocked",
        F,
    ),
    (
        _rx(
            r"too many (?:connections|messages|recipients|concurrent)",
            r"rate limit",
            r"rate[- ]limited",
            r"(?:sending|connection) rate",
            r"throttl",
            r"try again later .{0,20}too many",
            r"exceeded (?:the )?(?:daily|hourly|sending) (?:limit|quota)",
        ),
        "toomanyconn",
        F,
    ),
    (
        # The recipient chose not to receive this mail: not the address's death, not our fault.
        _rx(
            r"recipient(?:'s)? (?:email )?preferences",
            r"email preferences of the person",
            r"(?:domain|sender|address) filter",
            r"rejected by (?:the )?recipient's",
            r"refused by .{0,20}filter",
            # "550 : User unknown" with the address left out is how some carriers (KDDI au)
            # report their subscriber's domain filter; a dead mailbox gets "550 <addr>: ...".
            r"\b5\d\d\s*:?\s*:\s*user unknown",
        ),
        "filtered",
        S,
    ),
    (
        _rx(
            r"virus",
            r"malware",
            r"infected",
            r"dangerous (?:attachment|content)",
        ),
        "virusdetected",
        F,
    ),
    (
        _rx(
            r"\bspam",
            r"\bjunk",
            r"\bunsolicited",
            r"\buce\b",
            r"bulk mail",
            r"content (?:filter|rejected|not accepted)",
            r"message (?:content )?(?:was )?(?:rejected|refused|blocked) (?:due to|because of) "
            r"(?:content|spam)",
            r"considered (?:as )?(?:spam|unsolicited)",
            r"looks like spam",
            r"scored? (?:too )?high",
        ),
        "spamdetected",
        F,
    ),
    (
        _rx(
            r"message (?:size )?(?:is )?(?:too (?:big|large)|exceeds? (?:the )?(?:maximum|max"
            r"|size|fixed))",
            r"message (?:length|size) exceeds",
            r"size (?:limit )?exceeded",
            r"exceeds (?:the )?(?:maximum )?(?:message|mail|size) (?:size|limit)",
            r"too (?:big|large) for",
            r"\b5\.3\.4\b",
        ),
        "mesgtoobig",
        F,
    ),
    (
        _rx(
            r"(?:user|recipient|address|mailbox|account|addressee|person|local part|local-part"
            r"|recipient name|user name) (?:is |was )?(?:unknown|not (?:found|known|exist|listed"
            r"|registered|recognized|valid|available|in (?:our|my|the) )|does not exist"
            r"|doesn't exist|no longer exist|invalid|has been (?:removed|deleted|closed))",
            r"unknown (?:user|recipient|address|mailbox|account|local[ -]part|addressee|e-?mail)",
            r"no such (?:user|recipient|address|mailbox|account|person|local user|e-?mail)",
            r"no (?:mailbox|account|user) (?:here )?(?:by|with) that name",
            r"(?:invalid|bad|illegal) (?:\w{1,30} ){0,2}(?:recipient|mailbox|user|userid|address"
            r"|e-?mail address|destination)",
            r"(?:recipient|address|mailbox|user) (?:rejected|refused): (?:access denied|unknown"
            r"|user unknown|invalid|undeliverable)",
            r"(?<!sender )address rejected(?:\.|\s*$)",
            r"(?:address|mailbox|user|recipient|account)\S{0,30} (?:\S{1,40} )?"
            r"(?:does not|doesn't|did not) exist",
            r"not (?:a )?(?:valid|known) (?:user|recipient|mailbox|address)",
            r"not listed in (?:the )?(?:domino )?(?:directory|address book|public name)",
            r"couldn't find (?:the|any) (?:user|recipient|address|mailbox)",
            r"unable to find (?:the|any) (?:user|recipient|mailbox)",
            r"(?:could not|couldn't|cannot|can't) be found",
            r"doesn't have an? .{1,60} account",
            r"\bresolver\.adr\.recip",
            r"recipnotfound",
            r"utilisateur inconnu",
            r"(?:empf[aä]nger|benutzer|adresse|postfach)\S{0,30} (?:\S{1,40} )?unbekannt",
            r"destinatario (?:inesistente|desconocido)",
            r"vdeliver: invalid or unknown",
            r"addressee unknown",
            r"recipient (?:address )?(?:invalid|unknown)",
            r"\bchkusr\b",
            # RFC 5321's own text for 550; policy refusals carry other words, caught earlier.
            r"mailbox (?:is )?unavailable",
        ),
        "userunknown",
        H,
    ),
    (
        # Postfix's "Host not found, try again" and broken DNS replies are not NXDOMAIN.
        _rx(
            r"host not found, try again",
            r"malformed or unexpected name server reply",
            r"name server (?:failure|timeout|timed out)",
            r"temporary (?:dns|lookup|name service) (?:failure|error)",
        ),
        "networkerror",
        S,
    ),
    (
        _rx(
            r"host (?:or domain name )?(?:not found|unknown)",
            r"domain (?:name )?(?:not found|does not exist|doesn't exist|unknown|is not valid)",
            r"(?:no such|unknown|invalid|nonexistent|non-existent) (?:domain|host)",
            r"name or service not known",
            r"name server: \S{1,255}: host not found",
            r"dns (?:lookup )?(?:failure|error): .{0,40}not found",
            r"\bnxdomain\b",
            r"unrouteable (?:mail )?(?:domain|address)",
            r"unroutable domain",
            r"no (?:valid )?mx (?:record|host)",
            r"host name lookup failure",
            r"domain .{0,60} does not exist",
            r"[\w-]{1,63}(?:\.[\w-]{1,63}){1,8} does not exist",
            r"account or domain may not exist",
            r"domain is not reachable",
        ),
        "hostunknown",
        H,
    ),
    (
        _rx(r"has moved", r"address (?:has )?changed", r"no longer (?:valid|in use|available)"),
        "hasmoved",
        H,
    ),
    (
        _rx(
            r"null mx",
            r"does not accept (?:e-?)?mail",
            r"not accepting (?:any |network )?(?:e-?mail|messages)",
            r"indicated no smtp service",
        ),
        "notaccept",
        H,
    ),
    (
        # A disabled account may come back; policy suppresses it after repeated soft bounces.
        _rx(
            r"(?:account|mailbox|user|address)\S{0,30} (?:\S{1,40} )?(?:is |has been |was )?"
            r"(?:disabled|suspended|inactive|deactivated|locked|expired|frozen|blocked"
            r"|discontinued|closed)",
            r"(?:disabled|suspended|inactive|deactivated|locked|expired) (?:account|mailbox|user)",
            r"not (?:an )?active",
        ),
        "suspend",
        S,
    ),
    (
        _rx(
            r"(?:relay(?:ing)?) (?:access )?(?:denied|not (?:permitted|allowed)|prohibited)",
            r"not (?:permitted|allowed) to relay",
            r"we do not relay",
            r"unable to relay",
            r"relay not permitted",
            r"not in my list of allowed rcpthosts",
            r"norelaying",
        ),
        "norelaying",
        F,
    ),
    (
        _rx(
            r"(?:not|non)[- ]?(?:rfc )?complian",
            r"rfc ?[0-9]{3,4}",
            r"header (?:error|syntax)",
            r"message header",
            r"bare (?:lf|line ?feed)",
            r"malformed (?:message|header|mime|address|line)",
            r"syntax error",
            r"invalid (?:message|header|helo|ehlo|command)",
        ),
        "notcompliantrfc",
        F,
    ),
    (
        _rx(
            r"tls (?:required|is required|handshake|negotiation)",
            r"starttls",
            r"must (?:issue a starttls|use tls|authenticate)",
            r"encryption required",
            r"certificate",
        ),
        "securityerror",
        F,
    ),
    (
        _rx(
            r"polic(?:y|ies)",
            r"prohibited",
            r"not (?:allowed|permitted|authorized)",
            r"administrative",
        ),
        "policyviolation",
        F,
    ),
    (
        _rx(
            r"filtered",
            r"domain filter",
            r"(?:recipient|user)'?s? (?:filter|rule)",
            r"refused by .{0,20}filter",
            r"message filter",
        ),
        "filtered",
        S,
    ),
    (
        _rx(
            r"(?:retry|delivery) time(?:out)? (?:expired|exceeded)",
            r"retry timeout exceeded",
            r"expired",
            r"too long",
            r"could not be delivered (?:for|within) ",
            r"cannot send message (?:for|within) ",
            r"gave up",
            r"given up",
            r"giving up",
            r"failed \d+ attempts",
            r"has not yet been delivered",
            r"still (?:being retried|undelivered|trying)",
            r"have been failing for a long time",
            r"timed? ?out",
            r"delay(?:ed)?",
        ),
        "expired",
        S,
    ),
    (
        _rx(
            r"connection (?:refused|reset|lost|closed|failed)",
            r"(?:could not|couldn't|unable to|failed to) connect",
            r"no route to host",
            r"(?:host|server|domain) (?:is )?(?:not |un)reachable",
            r"(?:did not|didn't) accept our requests? to connect",
            r"network (?:is )?unreachable",
            r"temporary (?:failure|error|lookup)",
            r"dns (?:error|failure)",
            r"lost connection",
            r"try (?:again )?later",
            r"service (?:temporarily )?unavailable",
            r"resources? temporarily unavailable",
            r"loops? (?:back|detected)|mail loop",
            r"system (?:error|failure)",
            r"internal (?:server )?error",
            r"i/o error",
            r"local error",
        ),
        "networkerror",
        S,
    ),
    (
        # A bare refusal says neither whose fault nor for how long; a status code decides.
        _rx(r"rejected", r"refused", r"\bdenied\b", r"not accepted", r"unable to deliver"),
        "refused",
        S,
    ),
)

# Enhanced status codes whose meaning is settled without the text (RFC 3463, RFC 7505).
STATUS_RULES: tuple[tuple[re.Pattern[str], str, BounceClass], ...] = (
    (re.compile(r"^2\."), "delivered", BounceClass.NOT_A_BOUNCE),
    (re.compile(r"^[45]\.2\.2$"), "mailboxfull", S),
    (re.compile(r"^4\.4\.7$|^5\.4\.7$"), "expired", S),
    (re.compile(r"^4\."), "temporary", S),
    (re.compile(r"^5\.1\.(?:1|10)$"), "userunknown", H),
    (re.compile(r"^5\.1\.[23]$|^5\.4\.4$"), "hostunknown", H),
    (re.compile(r"^5\.1\.6$"), "hasmoved", H),
    (re.compile(r"^5\.1\.[78]$"), "rejected", F),
    (re.compile(r"^5\.2\.1$"), "suspend", S),
    (re.compile(r"^5\.2\.3$|^5\.3\.4$"), "mesgtoobig", F),
    (re.compile(r"^5\.6\."), "contenterror", F),
    (re.compile(r"^5\.7\.1[3-7]$"), "suspend", S),
    (re.compile(r"^5\.7\."), "policyviolation", F),
)

REASON_LABELS = {
    "userunknown": "mailbox does not exist",
    "hostunknown": "domain does not exist",
    "hasmoved": "address has moved",
    "notaccept": "domain accepts no mail",
    "mailboxfull": "mailbox full",
    "mailererror": "local delivery program failed",
    "suspend": "mailbox disabled or suspended",
    "rejected": "our sender address was rejected",
    "authfailure": "SPF/DKIM/DMARC authentication failed",
    "requireptr": "our sending host lacks reverse DNS",
    "blocked": "our sending host or domain is blocked",
    "virusdetected": "message flagged as a virus",
    "spamdetected": "message flagged as spam",
    "mesgtoobig": "message too large",
    "norelaying": "relaying denied",
    "toomanyconn": "rate limited",
    "notcompliantrfc": "message not RFC compliant",
    "securityerror": "TLS or authentication required",
    "policyviolation": "rejected by policy",
    "refused": "refused without a stated reason",
    "filtered": "rejected by the recipient's filter",
    "expired": "delivery time expired",
    "networkerror": "network or remote system error",
    "temporary": "temporary failure",
    "delayed": "delivery delayed",
    "delivered": "delivered",
    "undefined": "unknown failure",
    "unconfirmed": "reported unknown, without a code or SMTP stage to confirm it",
    "conflicting": "reported unknown, but the notice says the mailbox exists",
    "feedback": "complaint",
    "vacation": "automatic reply",
}

ENHANCED_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
REPLY_CODE = re.compile(r"(?<![\w.+/:=-])([245][0-5]\d)(?=[\s-]|$)", re.MULTILINE)


def _enhanced_status(text: str) -> str:
    """The telling enhanced status code in text: failures before successes ("250 2.1.5 Ok"
    in a transcript), specific before generic ("5.0.0" loses to "5.1.1")."""
    codes = ["{}.{}.{}".format(*m.groups()) for m in ENHANCED_STATUS.finditer(text)]
    failures = [c for c in codes if c[0] in "45"] or codes
    specific = [c for c in failures if not c.endswith(".0.0")]
    return (specific or failures or [""])[0]


def _reply_code(text: str) -> str:
    match = REPLY_CODE.search(text)
    return match.group(1) if match else ""


def _text_rule(text: str) -> tuple[str, BounceClass] | None:
    for pattern, reason, klass in TEXT_RULES:
        if pattern.search(text):
            return reason, klass
    return None


def _matches_rule(reason: str, text: str) -> bool:
    """Whether any text rule for this fine reason occurs in text, whatever comes first."""
    return any(r == reason and p.search(text) for p, r, _ in TEXT_RULES)


def _status_rule(status: str) -> tuple[str, BounceClass] | None:
    for pattern, reason, klass in STATUS_RULES:
        if pattern.search(status):
            return reason, klass
    return None


def _describe(reason: str, status: str) -> str:
    label = REASON_LABELS.get(reason, reason)
    return f"{label} ({status}) [{reason}]" if status else f"{label} [{reason}]"


def classify_status(
    status: str, diagnostic: str = "", smtp_code: str = ""
) -> tuple[BounceClass, str]:
    """Classify one failure from the remote server's own enhanced status, diagnostic text and
    SMTP reply code (an SMTP reply, a provider's record of one)."""
    klass, reason, status = _classify(status, diagnostic, smtp_code)
    if klass is H and reason == "userunknown" and status.startswith("5.7."):
        klass, reason = S, "filtered"  # see _confirm_unknown
    return klass, _describe(reason, status or _reply_code(smtp_code or diagnostic))


def _classify(status: str, diagnostic: str, smtp_code: str = "") -> tuple[BounceClass, str, str]:
    """Class, fine reason and the status code actually used."""
    status = _enhanced_status(status or "") or _enhanced_status(diagnostic)
    code = (smtp_code or "").strip()[:3] or _reply_code(diagnostic)
    temporary = status.startswith("4") or (not status and code.startswith("4"))
    reason, klass = _verdict(status, _plain_words(diagnostic), temporary)
    return klass, reason, status


def _plain_words(text: str) -> str:
    """The diagnostic without addresses and URLs (whose words would trigger the rules), and
    without the long tokens of ids and hashes, in single spaces."""
    text = re.sub(r"\b(?:https?|ftp)://([^/\s]{1,255})\S*", r" \1 ", text[:RULE_TEXT_LIMIT])
    text = re.sub(r"\S{80,}", " <token> ", ADDRESS.sub(" <address> ", text))
    return re.sub(r"\s+", " ", text)


def _verdict(status: str, text: str, temporary: bool) -> tuple[str, BounceClass]:
    """The fine reason and class; text wins over codes because many servers mislabel."""
    if status.startswith("2"):
        return "delivered", BounceClass.NOT_A_BOUNCE
    by_text = _text_rule(text)
    by_status = _status_rule(status)
    if by_text is None:
        return by_status or ("undefined", S)
    reason, klass = by_text
    # "Inactive" or "disabled" with 5.1.1 (bad mailbox) means the address is gone for good.
    if reason == "suspend" and status == "5.1.1":
        return "userunknown", H
    # The remote server asked us to retry: never treat that as a verdict on the address.
    if temporary and klass is H:
        return reason, S
    # A bare "rejected"/"denied" is weaker than any status code.
    if reason == "refused" and by_status:
        return by_status
    return reason, klass


# "User unknown" is the one verdict that removes a reader, so in a relayed notice it needs
# corroboration: an enhanced status code (even a lying 5.0.0 or 5.7.1; but not 5.2.x, which
# says the mailbox exists), an RCPT-stage transcript, or wording that only a directory lookup
# produces. A "user unknown" sent only after the message body was seen is a content filter's
# answer (real mailbox checks happen at RCPT TO): SOFT. Pipelined RCPT rejections also print
# ">>> DATA", but the DATA reply then says there was no valid recipient.
DATA_STAGE = re.compile(
    r"(?:>>>|in\s+reply\s+to|after|final|command[\s:-]{0,9})\s{0,9}(?:end\s+of\s+)?data\b"
    r"|failed after i sent the message",
    re.IGNORECASE,
)
PIPELINED_RCPT = re.compile(r"need rcpt|no valid recipients|\b503\b", re.IGNORECASE)
RCPT_STAGE = re.compile(
    r"in\s+reply\s+to\s+rcpt|>>>\s*rcpt\s+to|after\s+rcpt\b|rcpt\s+to\s+response|our\s+rcpt\s+to"
    r"|smtp:rcpt"
    r"|does not like recipient|\[rcpt_to\]",
    re.IGNORECASE,
)
# A reply that repeats the address in angle brackets ("<a@b>: Recipient address rejected",
# "<a@b>... User unknown") answers RCPT TO:<a@b>, the command that checks a mailbox.
ECHOED_RECIPIENT = re.compile(
    r"\b[45]\d\d[ -]{1,3}(?:[45]\.\d{1,3}\.\d{1,3}\s{1,3})?"
    r"<[^<>\s@]{1,64}@[^<>\s]{1,255}>(?::|\.\.\.)"
)
DIRECTORY_LOOKUP = re.compile(
    r"in (?:local|virtual) (?:recipient|alias|mailbox) table"
    r"|not listed in (?:the )?(?:domino directory|public name)"
    r"|recipient name is not recognized|resolver\.adr\.recip|recipientnotfound"
    r"|no mailbox here by that name|account that you tried to reach does not exist"
    r"|because the address couldn't be found|delivery error: dd this user doesn't have"
    r"|invalid final delivery userid",
    re.IGNORECASE,
)


def _smtp_stage(text: str) -> str:
    """Which SMTP command the failure answered, as far as the notice tells: DATA, RCPT or ""."""
    if DATA_STAGE.search(text):
        return "RCPT" if PIPELINED_RCPT.search(text) else "DATA"
    return "RCPT" if RCPT_STAGE.search(text) else ""


def _recipient_verdict(
    recipient: str, status: str, diagnostic: str, context: str, code: str = ""
) -> tuple[BounceClass, str, str]:
    """Classify one recipient's failure, using the notice around it for the SMTP stage."""
    klass, reason, status = _classify(status, diagnostic, code)
    if klass is H and reason == "userunknown":
        return _confirm_unknown(status, diagnostic, context)
    return klass, reason, status


def _confirm_unknown(status: str, diagnostic: str, context: str) -> tuple[BounceClass, str, str]:
    """Keep a "user unknown" verdict HARD only when something corroborates it."""
    # The remote server's own 5.7.x code says its policy refused us ("Access denied" from an
    # access table, filters that hide which mailboxes exist), whatever words it adds.
    if _enhanced_status(diagnostic).startswith("5.7."):
        return S, "filtered", status
    if DIRECTORY_LOOKUP.search(diagnostic) or status.startswith("5.1."):
        return H, "userunknown", status
    stage = _smtp_stage(diagnostic + "\n" + context)
    if stage == "DATA":
        return S, "filtered", status
    if stage == "RCPT":
        return H, "userunknown", status
    # Without a transcript, a code still has to agree: none, or 5.2.x (the mailbox exists),
    # leaves the words unconfirmed; the generic 5.0.0 needs the reply to echo the address.
    if not status or status.startswith("5.2."):
        return S, "unconfirmed", status
    if status == "5.0.0" and not ECHOED_RECIPIENT.search(diagnostic):
        return S, "unconfirmed", status
    return H, "userunknown", status


# ---------------------------------------------------------------------------------------------
# Reading the message
# ---------------------------------------------------------------------------------------------

# Bounded like RFC 5321's limits, which also keeps the scan linear on hostile input.
ADDRESS = re.compile(
    r"[\w.!#$%&*+/=?^~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,10}"
    r"[A-Za-z]{2,24}|[\w.!#$%&*+/=?^~-]{1,64}@\[[0-9.]{7,15}\]"
)
VERP_TOKEN = re.compile(r"(?<![\w.+-])b\+([A-Za-z0-9._=-]+)@", re.IGNORECASE)
ROLE_LOCAL_PARTS = re.compile(
    r"^(?:postmaster|mailer-daemon|mail-daemon|mailer_daemon|abuse|hostmaster|no-?reply|"
    r"root|daemon|mail\.delivery\.system|post_master)$",
    re.IGNORECASE,
)


def _decode_header(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, MessageError):
        return str(value)


def _addresses_in(value: str) -> list[str]:
    return [a.lower().strip(".") for a in ADDRESS.findall(value)]


def _header_addresses(msg: Message, *names: str) -> list[str]:
    found: list[str] = []
    for name in names:
        for value in msg.get_all(name) or []:
            found.extend(_addresses_in(_decode_header(value)))
    return found


def _part_text(part: Message) -> str:
    """The decoded text of a leaf part, whatever its charset claims."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    try:
        text = payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, UnicodeError, MessageError):
        text = payload.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text


def _html_to_text(text: str) -> str:
    text = _drop_elements(text[:TEXT_LIMIT], ("style", "script"))
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|<p\b[^>]*>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _drop_elements(text: str, names: tuple[str, ...]) -> str:
    """Remove <style> and <script> elements with their content, in one linear pass."""
    low, kept, at = text.lower(), [], 0
    while True:
        starts = [i for i in (low.find(f"<{n}", at) for n in names) if i >= 0]
        if not starts:
            return "".join(kept) + text[at:]
        start = min(starts)
        name = next(n for n in names if low.startswith(f"<{n}", start))
        end = low.find(f"</{name}>", start)
        kept.append(text[at:start])
        if end < 0:
            return "".join(kept)
        at = end + len(name) + 3


def _nested_text(part: Message) -> str:
    """The field blocks of a message/* report part, as text ("Name: value" lines)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # Joined by hand: the email generator refuses some malformed fields.
        blocks = (p.items() if isinstance(p, Message) else [] for p in payload)
        return "\n\n".join("\n".join(f"{k}: {v}" for k, v in b) for b in blocks)
    return _part_text(part)


@dataclass
class _Parts:
    """The parts of a report that matter, found in one walk."""

    notification: list[str] = field(default_factory=list)
    delivery_status: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    original: Message | None = None
    hotmail_recipients: list[str] = field(default_factory=list)
    # Reports inside an attached message: a forwarded report, or a bounce of a bounce.
    nested_delivery_status: list[str] = field(default_factory=list)
    nested_feedback: list[str] = field(default_factory=list)


ORIGINAL_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
    "message/partial",
)


def _walk(msg: Message, parts: _Parts) -> None:
    """Sort the leaves of msg into notification text, reports and the original message."""
    ctype = msg.get_content_type()
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        parts.delivery_status.append(_nested_text(msg))
    elif ctype == "message/feedback-report":
        parts.feedback.append(_nested_text(msg))
    elif ctype in ORIGINAL_TYPES:
        _walk_original(msg, parts)
    elif msg.is_multipart():
        payload = msg.get_payload()
        children = payload if isinstance(payload, list) else []
        if ctype == "multipart/alternative":
            children = _preferred_alternative(children)
        for child in children:
            _walk(child, parts)
    elif _is_notice_text(msg, ctype):
        parts.notification.append(_part_text(msg))


def _is_notice_text(part: Message, ctype: str) -> bool:
    """Text meant for a person; a multipart whose boundary is missing is read as text too."""
    if ctype.startswith("multipart/") and not part.is_multipart():
        return True
    return ctype.startswith("text/") and not _is_attachment_of_original(part)


def _preferred_alternative(children: list[Message]) -> list[Message]:
    plain = [c for c in children if c.get_content_type() == "text/plain"]
    return plain[:1] or children[:1]


def _is_attachment_of_original(part: Message) -> bool:
    """A returned message attached as a text/plain file is still the original, not the notice."""
    name = str(part.get_filename() or "").lower()
    return name.endswith((".eml", ".msg")) or "original" in name


def _walk_original(part: Message, parts: _Parts) -> None:
    """Keep the first returned message, and any reports nested inside attached messages."""
    payload = part.get_payload()
    inner: Message | None = None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
    elif isinstance(payload, str) or part.get_content_type() == "text/rfc822-headers":
        inner = email.message_from_string(_part_text(part), policy=policy.compat32)
    if inner is None:
        return
    parts.hotmail_recipients.extend(_header_addresses(inner, "X-HmXmrOriginalRecipient"))
    nested = _Parts()
    _walk(inner, nested)
    parts.nested_delivery_status.extend(nested.delivery_status + nested.nested_delivery_status)
    parts.nested_feedback.extend(nested.feedback + nested.nested_feedback)
    if parts.original is None:
        parts.original = inner


# ---------------------------------------------------------------------------------------------
# Report fields (RFC 3464 and RFC 5965 share the "Name: value" block syntax)
# ---------------------------------------------------------------------------------------------

FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Split report text into blocks of lower-cased fields; continuation lines are joined."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in _unquote(text).splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        match = FIELD_LINE.match(line)
        if match:
            last = match.group(1).lower()
            # A repeated Final-Recipient without a blank line before it starts a new recipient.
            if last in current and last in ("final-recipient", "original-recipient"):
                blocks.append(current)
                current = {}
            # Other repeated fields (ARF's Original-Rcpt-To) accumulate.
            value = match.group(2).strip()
            current[last] = f"{current[last]}, {value}" if last in current else value
        elif last and line[:1] in " \t":
            current[last] += " " + line.strip()
    if current:
        blocks.append(current)
    return blocks


def _unquote(text: str) -> str:
    """Drop the "> " of a forwarded message so its fields read as fields."""
    if not re.search(r"^>+ ?(?:Final-Recipient|Feedback-Type|Action):", text, re.M | re.I):
        return text
    return re.sub(r"^>+ ?", "", text, flags=re.MULTILINE)


def _field_address(value: str) -> str:
    value = value.split(";", 1)[1] if ";" in value else value
    found = _addresses_in(value)
    if found:
        return found[0]
    return value.strip().strip("<>").strip().lower()


# ---------------------------------------------------------------------------------------------
# Complaints
# ---------------------------------------------------------------------------------------------


def _complaint(msg: Message, parts: _Parts, body: str) -> list[RecipientReport] | None:
    """Recipients of an ARF report, a Hotmail JMRP or an Apple Mail unsubscribe, or None."""
    feedback = parts.feedback or parts.nested_feedback
    reports = [b for text in feedback for b in _field_blocks(text) if "feedback-type" in b]
    if not reports:
        reports = [b for b in _field_blocks(body) if "feedback-type" in b and "user-agent" in b]
    if reports:
        return _arf_recipients(reports, parts)
    subject = _decode_header(msg.get("Subject")).lower()
    if parts.hotmail_recipients or subject.startswith("complaint about message from"):
        rcpts = parts.hotmail_recipients or _original_to(parts)
        return [_complaint_report(r, "abuse") for r in rcpts or [""]]
    if str(msg.get("X-Apple-Unsubscribe", "")).strip().lower() == "true":
        sender = _header_addresses(msg, "From")
        return [_complaint_report(sender[0] if sender else "", "opt-out")]
    return None


def _arf_recipients(reports: list[dict[str, str]], parts: _Parts) -> list[RecipientReport]:
    found: list[RecipientReport] = []
    for report in reports:
        ftype = report.get("feedback-type", "abuse").split()[0].lower() or "abuse"
        listed = report.get("original-rcpt-to", "") + " " + report.get("removal-recipient", "")
        rcpts = _addresses_in(listed) or _original_to(parts)
        found.extend(_complaint_report(r, ftype) for r in rcpts or [""])
    return _dedupe(found)[:RECIPIENT_LIMIT]


def _original_to(parts: _Parts) -> list[str]:
    if parts.original is None:
        return []
    return _unique(_header_addresses(parts.original, "To"))


def _complaint_report(recipient: str, feedback_type: str) -> RecipientReport:
    return RecipientReport(
        recipient=recipient,
        classification=C,
        status="",
        reason=f"complaint: {feedback_type} [feedback]",
        diagnostic="",
        feedback_type=feedback_type,
    )


# ---------------------------------------------------------------------------------------------
# Provider notifications delivered by mail (Amazon SES through SNS)
# ---------------------------------------------------------------------------------------------


def _provider_json(body: str) -> tuple[list[RecipientReport], dict[str, str]] | None:
    """Recipients of an Amazon SES notification (bounce, complaint or delivery), or None."""
    data = _ses_notification(body)
    if data is None:
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    headers = _ses_headers(data.get("mail") or {})
    if kind == "complaint":
        info = data.get("complaint") or {}
        ftype = str(info.get("complaintFeedbackType") or "abuse")
        rcpts = [r.get("emailAddress", "") for r in info.get("complainedRecipients", [])]
        return [_complaint_report(r.lower(), ftype) for r in rcpts], headers
    if kind == "bounce":
        return _ses_bounces(data.get("bounce") or {}), headers
    if kind == "delivery":
        rcpts = (data.get("delivery") or {}).get("recipients", [])
        status = BounceClass.NOT_A_BOUNCE
        return [
            RecipientReport(r.lower(), status, "2.0.0", "delivered", "") for r in rcpts
        ], headers
    return None


def _ses_notification(body: str) -> dict | None:
    """The SES event in a mail body: bare (email protocol) or inside an SNS envelope (JSON)."""
    match = re.search(r'\{\s*"(?:notificationType|eventType)"', body)
    if match:
        data = _json_at(body[match.start() :])
        return data if isinstance(data, dict) else None
    start = body.find("{")
    envelope = _json_at(body[start:]) if start >= 0 and '\\"notificationType' in body else None
    if isinstance(envelope, dict) and isinstance(envelope.get("Message"), str):
        data = _json_at(envelope["Message"])
        return data if isinstance(data, dict) else None
    return None


def _json_at(text: str) -> object:
    """The JSON value text starts with; mail gateways may have wrapped its long line."""
    for candidate in (text, re.sub(r"\r?\n", "", text)):
        try:
            return json.JSONDecoder().raw_decode(candidate)[0]
        except ValueError:
            continue
    return None


def _ses_bounces(info: dict) -> list[RecipientReport]:
    permanent = str(info.get("bounceType", "")).lower() == "permanent"
    found = []
    for rcpt in info.get("bouncedRecipients", []):
        diagnostic = str(rcpt.get("diagnosticCode") or "")
        status = str(rcpt.get("status") or "")
        klass, reason = classify_status(status, diagnostic)
        if klass is H and not permanent:
            klass = S
        address = str(rcpt.get("emailAddress", "")).lower()
        found.append(RecipientReport(address, klass, status, reason, _trim(diagnostic)))
    return found


def _ses_headers(mail: dict) -> dict[str, str]:
    headers = {h.get("name", ""): h.get("value", "") for h in mail.get("headers", [])}
    if mail.get("messageId") and "Message-ID" not in headers:
        headers["X-SES-Message-ID"] = mail["messageId"]
    wanted = {h.lower() for h in ORIGINAL_HEADERS} | {"x-ses-message-id"}
    return {k: str(v) for k, v in headers.items() if k.lower() in wanted}


# ---------------------------------------------------------------------------------------------
# RFC 3464 delivery status notifications
# ---------------------------------------------------------------------------------------------


def _dsn_recipients(parts: _Parts, body: str, notice: str) -> list[RecipientReport]:
    """Per-recipient reports from delivery-status parts, or from DSN fields in plain text."""
    statuses = parts.delivery_status or parts.nested_delivery_status
    blocks = [b for text in statuses for b in _field_blocks(text)]
    blocks = [b for b in blocks if _is_recipient_block(b)]
    if not blocks:
        blocks = [b for b in _field_blocks(body) if _is_recipient_block(b) and "action" in b]
    blocks = blocks[:RECIPIENT_LIMIT]
    rcpts = [_block_recipient(b) for b in blocks]
    reports = [_dsn_recipient(b, r, rcpts, notice) for b, r in zip(blocks, rcpts, strict=True)]
    if len(reports) == 1:
        reports = [_contradicted(reports[0], notice)]
    return _dedupe(reports)


def _is_recipient_block(block: dict[str, str]) -> bool:
    return any(k in block for k in ("final-recipient", "original-recipient", "x-actual-recipient"))


def _block_recipient(block: dict[str, str]) -> str:
    """The address we sent to: Original-Recipient when it is an address, else Final-Recipient."""
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        candidate = _field_address(block.get(name, ""))
        if "@" in candidate:
            return candidate
    return _field_address(block.get("final-recipient", ""))


def _dsn_recipient(
    block: dict[str, str], recipient: str, rcpts: list[str], notice: str
) -> RecipientReport:
    context = _chunk_for(recipient, rcpts, notice)
    action = block.get("action", "").lower().split()[0] if block.get("action") else ""
    diagnostic = _diagnostic_value(block.get("diagnostic-code", ""))
    if not diagnostic.strip() or _is_generic(diagnostic):
        diagnostic = (diagnostic + " " + context[:600]).strip()
    status = _dsn_status(block.get("status", ""), diagnostic)
    return _recipient_report(recipient, action, status, diagnostic, context)


# A relay that files the remote reply under its own category ("5.1.0 - Unknown address error
# 550-'<the remote reply>'", as Amazon SES does): the quoted reply is the evidence.
RELAYED_REPLY = re.compile(r"^\s*[245]\.\d+\.\d+ - [^'\"]{3,60}?[245]\d\d[ -]'(.+)'", re.DOTALL)


def _diagnostic_value(value: str) -> str:
    """The remote server's words in a Diagnostic-Code field, without type or relay wrapper."""
    value = re.sub(r"^\s*[\w-]+\s*;\s*", "", value)
    relayed = RELAYED_REPLY.match(value)
    return relayed.group(1) if relayed else value


def _is_generic(diagnostic: str) -> bool:
    """True when a diagnostic names no reason (a bare code), so the notice text may help."""
    words = re.sub(r"[\d.#()<>\[\]-]+", " ", diagnostic).split()
    return len(words) < 2


def _dsn_status(field_value: str, diagnostic: str) -> str:
    """The Status field, unless it is generic and the diagnostic names a precise code."""
    status = _enhanced_status(field_value)
    inner = _enhanced_status(diagnostic)
    if not status:
        return inner
    # "5.0.0" says nothing more than "failed"; a precise code of the same class says why.
    if inner and status.endswith(".0.0") and status[0] == inner[0]:
        return inner
    return status


def _recipient_report(
    recipient: str, action: str, status: str, diagnostic: str, context: str
) -> RecipientReport:
    if action.startswith(("delivered", "relayed", "expanded")):
        return RecipientReport(recipient, BounceClass.NOT_A_BOUNCE, status, "delivered", "")
    klass, reason, status = _recipient_verdict(recipient, status, diagnostic, context)
    if action.startswith("delayed"):
        klass, reason = BounceClass.DELAY, "delayed"
    return RecipientReport(recipient, klass, status, _describe(reason, status), _trim(diagnostic))


def _contradicted(report: RecipientReport, notice: str) -> RecipientReport:
    """A lone HARD verdict whose notice says the mailbox exists (full, or disabled without a
    5.1.1 to say it is gone for good, as in `_verdict`) contradicts itself, and a
    self-contradicting report is no proof of a dead address."""
    if report.classification is not H:
        return report
    words = _plain_words(notice)
    exists = _matches_rule("mailboxfull", words) or (
        report.status != "5.1.1" and _matches_rule("suspend", words)
    )
    if not exists:
        return report
    reason = _describe("conflicting", report.status)
    return RecipientReport(report.recipient, S, report.status, reason, report.diagnostic)


def _trim(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= DIAGNOSTIC_LIMIT else text[: DIAGNOSTIC_LIMIT - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Non-standard bounces: find the recipients and their diagnostics in the prose
# ---------------------------------------------------------------------------------------------

# Lines where the returned message starts in MTAs that inline it into the notice.
ORIGINAL_MARKER = re.compile(
    r"^[ \t>|*=_-]{0,40}(?:"
    r"-+ ?(?:this is a copy of the message|below this line is a copy|original message"
    r"|enclosed is a copy|returned message|the original message|original message follows)"
    r"|-{0,40}[ \t]{0,9}original message (?:follows|headers?)|original message headers"
    r"|message headers follow|headers of the original|the headers of the original"
    r"|-+ ?(?:unsent|undelivered) message"
    r"|the original message (?:was|is) (?:attached|included|follows)[^\w\n]*$"
    r"|bounced e-?mail:|\*+ ?message truncated"
    r"|content-type: message/rfc822"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
HEADER_START = re.compile(
    r"^(?:Return-Path|Received|Delivered-To|DKIM-Signature|DomainKey-Signature|"
    r"X-Received|ARC-Seal|Authentication-Results|Message-I[dD]|MIME-Version|Date|From) ?:",
    re.MULTILINE | re.IGNORECASE,
)


def _split_notice(text: str) -> tuple[str, str]:
    """Split inline text into the notice proper and the returned message after it."""
    marker = ORIGINAL_MARKER.search(text)
    cut = marker.start() if marker else -1
    header = _first_header_block(text)
    if header >= 0 and (cut < 0 or header < cut):
        cut = header
    if cut < 0:
        return text, ""
    return text[:cut], text[cut:]


def _first_header_block(text: str) -> int:
    """Where a returned header block starts: two header lines in a row, after some prose."""
    for match in HEADER_START.finditer(text):
        following = text[match.end() : match.end() + 500].split("\n", 3)[1:3]
        if any(re.match(r"^(?:[\w-]+:|\s)", line) for line in following) and match.start() > 40:
            return match.start()
    return -1


# Lines that name a failed recipient, in the wording of many MTAs. The address is in group 1.
# Quantifiers are bounded (and never span lines) so hostile input cannot make the scan slow.
_LOCAL = r"[^\s<>()\"':;,]{1,64}"
_DOMAIN = r"[^\s<>()\"':;,\]]{1,255}?"
_DOMAIN_GREEDY = _DOMAIN.rstrip("?")
_ADDR = _LOCAL + "@" + _DOMAIN
RECIPIENT_LINES = tuple(
    re.compile(pattern, re.MULTILINE | re.IGNORECASE)
    for pattern in (
        # "  <user@example.org>:" or a bare address alone on its line
        rf"^[ \t>*•-]{{0,20}}[<\"]?({_ADDR})[>\"]?:?[ \t]*$",
        # ">>> user@example.org <user@example.org>"
        rf"^[ \t>*•-]{{0,20}}(?:>>>[ \t]*)?\S{{1,64}}@\S{{1,255}}[ \t]+<({_ADDR})>",
        # sendmail transcripts: "550 5.1.1 <user@example.org>... User unknown"
        rf"^[ \t]{{0,20}}[245]\d\d[ -](?:[245]\.\d{{1,3}}\.\d{{1,3}} )?<({_ADDR})>\.\.\.",
        # "user@example.org Invalid Address, ERROR_CODE :550"
        rf"^[ \t]{{0,20}}<?({_ADDR})>?[ \t]+[A-Z]",
        # Exchange: "user@example.org on 4/29/01 11:34:45 PM"
        rf"^[ \t]{{0,20}}(?:[^\s<]{{0,80}}<)?(?:mailto:)?({_ADDR})>?[ \t]+on[ \t]+\w",
        # Exchange 2007+: "Name<mailto:user@example.org>"
        rf"^[ \t]{{0,20}}\S[^<\n]{{0,60}}<mailto:({_ADDR})>[ \t]*$",
        # "<user@example.org>: reason", "user@example.org [reason]", "user@example.org ... reason"
        rf"^[ \t]{{0,20}}<?({_ADDR})>?:?[ \t]{{0,9}}(?:\[|\(|\.\.\.|:\s|\s-\s)",
        # "Delivery failed: user@example.org", "User's mailbox is full: <user@example.org>"
        r"^[^\n:]{0,40}(?:fail|full|unknown|error|undeliver|reject|invalid)[^\n:]{0,40}:"
        rf"[ \t]*<?({_ADDR})>?[ \t]*$",
        # prose: "could not be delivered to <user@example.org>", "RCPT TO: user@example.org"
        r"(?:deliver(?:ing|ed)? (?:your (?:mail|message) )?to|could not be delivered to"
        r"|couldn't be delivered to|failed (?:permanently )?(?:to|for)|permanent errors?"
        r"|rcpt to|recipient|addressed to|to the following address(?:es)?|message to"
        r"|original-recipient|final-recipient|destinataire|unknown user|no such user)"
        rf"[\s:;(<\[\"']{{1,8}}(?:rfc822;[ \t]*)?(?:mailto:)?({_LOCAL}@{_DOMAIN_GREEDY})",
    )
)


def _text_recipients(notice: str, exclude: set[str]) -> list[str]:
    """Failed recipients named in the notice, in order; sender-side addresses left out."""
    found: list[tuple[int, str]] = []
    for pattern in RECIPIENT_LINES:
        for match in pattern.finditer(notice):
            for address in _addresses_in(match.group(1)):
                found.append((match.start(1), address))
    ordered = _unique([a for _, a in sorted(found)])
    kept = [a for a in ordered if a not in exclude]
    roles = [a for a in kept if ROLE_LOCAL_PARTS.match(a.split("@")[0])]
    if roles and len(roles) < len(kept):
        kept = [a for a in kept if a not in roles]
    return kept


def _exim_recipients(notice: str) -> list[str]:
    """The indented list after Exim's "The following address(es) failed:" (may lack a domain)."""
    match = re.search(
        r"(?:following\s+address(?:\(es\)|es)?\s+failed|has not yet been delivered is):?\s*\n"
        r"((?:[ \t]+\S.*\n?|[ \t]*\n)+)",
        notice,
        re.IGNORECASE,
    )
    if not match:
        return []
    found = []
    for line in match.group(1).splitlines():
        if not re.match(r"^(?: {1,3}|\t)\S", line):
            continue
        addresses = _addresses_in(line)
        if addresses:
            found.append(addresses[0])
        elif len(line.split()) == 1:
            found.append(line.strip().rstrip(":").strip('<>"').lower())
    return found


def _text_bounces(
    msg: Message, notice: str, subject: str, exclude: set[str], parts: _Parts
) -> list[RecipientReport]:
    """Recipients and diagnostics of a bounce that has no machine-readable part."""
    failed = [a.lower() for a in _header_addresses(msg, "X-Failed-Recipients")]
    rcpts = failed or _exim_recipients(notice) or _text_recipients(notice, exclude)
    if not rcpts:
        rcpts = _text_recipients(notice, set()) or _original_to(parts)[:1] or [""]
    rcpts = _unique(rcpts)[:RECIPIENT_LIMIT]
    delayed = _is_delay_notice(subject, notice)
    return [_prose_report(r, rcpts, notice, subject, delayed) for r in rcpts]


def _is_delay_notice(subject: str, notice: str) -> bool:
    head = subject.lower()
    if re.search(r"delayed|delay\)|warning|still being retried|not yet been delivered", head):
        return True
    return bool(
        re.search(r"no action is required on your part|will (?:continue|keep) trying", notice, re.I)
    )


def _prose_report(
    recipient: str, rcpts: list[str], notice: str, subject: str, delayed: bool
) -> RecipientReport:
    chunk = _chunk_for(recipient, rcpts, notice)
    # The SMTP stage of one recipient must not be read from another recipient's transcript.
    context = notice if len(rcpts) == 1 else chunk
    klass, reason, status = _recipient_verdict(recipient, "", chunk, context)
    if reason == "undefined":
        shared = _shared_text(rcpts, notice) + "\n" + subject
        klass, reason, status = _recipient_verdict(recipient, status, shared, context)
    if delayed and klass is not BounceClass.NOT_A_BOUNCE:
        klass, reason = BounceClass.DELAY, "delayed"
    diagnostic = _trim(chunk)
    return RecipientReport(recipient, klass, status, _describe(reason, status), diagnostic)


def _chunk_for(recipient: str, rcpts: list[str], notice: str) -> str:
    """The notice lines from this recipient's first mention to the next line that names
    another recipient or another recipient's domain (transcripts report hosts by domain)."""
    low = notice.lower()
    start = low.find(recipient) if recipient else -1
    if start < 0:
        # Unnamed in a notice about several recipients: no line of it is known to be theirs.
        return notice if len(rcpts) <= 1 else ""
    start = low.rfind("\n", 0, start) + 1
    if len(rcpts) == 1:
        return notice[start:]
    own_domain = recipient.rpartition("@")[2]
    names = {r for r in rcpts if r != recipient}
    names |= {r.rpartition("@")[2] for r in names} - {own_domain, ""}
    ends = [m.start() for n in names for m in re.finditer(re.escape(n) + r"\b", low)]
    ends = [low.rfind("\n", 0, e) + 1 for e in ends if e > start + len(recipient)]
    ends = [e for e in ends if e > start]
    return notice[start : min(ends)] if ends else notice[start:]


def _shared_text(rcpts: list[str], notice: str) -> str:
    """The notice with every recipient's own chunk removed: its common explanation."""
    if len(rcpts) <= 1:
        return notice
    low = notice.lower()
    starts = [low.find(r) for r in rcpts if r and low.find(r) >= 0]
    return notice[: min(starts)] if starts else notice


# ---------------------------------------------------------------------------------------------
# Auto-replies and "is this a bounce at all"
# ---------------------------------------------------------------------------------------------

AUTOREPLY_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ _-]?(?:reply|response|respons|antwort)|out of (?:the )?office"
    r"|away (?:from|until)|on vacation|vacation|abwesenheit|absence|absent"
    r"|r[ée]ponse automatique|risposta automatica|respuesta autom[aá]tica|resposta autom[aá]tica"
    r"|automatisch antwoord|autosvar|automaattinen vastaus|自動応答|不在)",
    re.IGNORECASE,
)
BOUNCE_SENDER = re.compile(
    r"mailer[-_.]?daemon|postmaster|post_master|mail[ .]delivery|mail ?administrator"
    r"|mmsc|sysadmin|^<?>?$",
    re.IGNORECASE,
)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|problem)"
    r"|returned mail|mail delivery failed|failure notice|delivery failure|failed delivery"
    r"|could not be delivered|non[- ]?delivery|nondeliverable|mail system error"
    r"|returned to sender|delivery report|\bbounced?\b|delayed mail"
    r"|there was an error sending|warning: message|error sending",
    re.IGNORECASE,
)


BOUNCE_BODY = re.compile(
    r"could not be delivered to|couldn't be delivered to|was not delivered to"
    r"|unable to deliver (?:your )?(?:message|mail)|delivery (?:has )?failed"
    r"|permanent (?:fatal )?errors?|undeliverable (?:mail|message)|returned mail",
    re.IGNORECASE,
)


def _is_autoreply(msg: Message, subject: str) -> bool:
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto.startswith("auto-replied") or msg.get("X-Autoreply") or msg.get("X-Autorespond"):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(AUTOREPLY_SUBJECT.search(subject.strip()))


def _looks_like_bounce(msg: Message, subject: str, notice: str) -> bool:
    """Whether an unstructured message is a delivery failure notice at all."""
    sender = _decode_header(msg.get("From")) if "From" in msg else "no sender"
    if BOUNCE_SENDER.search(sender) or BOUNCE_SUBJECT.search(subject):
        return True
    if msg.get_content_type() == "multipart/report" or msg.get("X-Failed-Recipients"):
        return True
    return bool(BOUNCE_BODY.search(notice[:3000]))


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def classify_message(raw: bytes, envelope_to: Sequence[str] = ()) -> Report:
    """Classify one inbound message: bounce, delay, complaint, auto-reply or not a report."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    tokens = _verp_tokens(msg, envelope_to)
    parts = _Parts()
    _walk(msg, parts)
    body = "\n".join(parts.notification)[:TEXT_LIMIT].replace("\r\n", "\n")
    notice, inline_original = _split_notice(body)
    if parts.original is None and inline_original:
        parts.original = _parse_inline_original(inline_original)
    headers = _original_headers(parts.original)
    provider = _provider_json(body)
    if provider is not None:
        recipients, provider_headers = provider
        headers = headers or provider_headers
    else:
        recipients = _recipients(msg, parts, body, notice, envelope_to)
    return Report(_message_class(recipients), tuple(recipients), tokens, headers)


def _recipients(
    msg: Message, parts: _Parts, body: str, notice: str, envelope_to: Sequence[str]
) -> list[RecipientReport]:
    """Try each kind of report, most authoritative first."""
    complaint = _complaint(msg, parts, body)
    if complaint is not None:
        return complaint
    dsn = _dsn_recipients(parts, body, notice)
    if dsn:
        return dsn
    subject = _decode_header(msg.get("Subject"))
    if _looks_like_bounce(msg, subject, notice) and not _is_personal_autoreply(msg, subject):
        exclude = _sender_side(msg, parts, envelope_to)
        return _text_bounces(msg, notice, subject, exclude, parts)
    if _is_autoreply(msg, subject):
        sender = _header_addresses(msg, "From")
        reason = _describe("vacation", "")
        return [RecipientReport(sender[0] if sender else "", BounceClass.AUTOREPLY, "", reason, "")]
    return []


def _is_personal_autoreply(msg: Message, subject: str) -> bool:
    """An out-of-office reply can look like a bounce only by its Auto-Submitted header."""
    sender = _decode_header(msg.get("From"))
    return bool(AUTOREPLY_SUBJECT.search(subject.strip())) and not BOUNCE_SENDER.search(sender)


def _sender_side(msg: Message, parts: _Parts, envelope_to: Sequence[str]) -> set[str]:
    """Addresses that belong to us or the MTA, never to a failed recipient."""
    names = ("From", "To", "Cc", "Reply-To", "Sender", "Return-Path", "Delivered-To")
    found = set(_header_addresses(msg, *names))
    found.update(a.lower() for a in envelope_to)
    if parts.original is not None:
        original = ("From", "Sender", "Reply-To", "Return-Path", "Errors-To")
        found.update(_header_addresses(parts.original, *original))
    return found


def _parse_inline_original(text: str) -> Message | None:
    start = HEADER_START.search(text)
    if not start:
        return None
    return email.message_from_string(text[start.start() :], policy=policy.compat32)


def _original_headers(original: Message | None) -> dict[str, str]:
    if original is None:
        return {}
    found = {}
    for name in ORIGINAL_HEADERS:
        value = original.get(name)
        if value is not None:
            found[name] = re.sub(r"\s+", " ", _decode_header(value)).strip()
    return found


def _verp_tokens(msg: Message, envelope_to: Sequence[str]) -> tuple[str, ...]:
    values = list(envelope_to)
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To"):
        values.extend(str(v) for v in msg.get_all(name) or [])
    return tuple(_unique([m for v in values for m in VERP_TOKEN.findall(v)]))


# Which class speaks for the whole message when recipients differ.
CLASS_PRIORITY = (
    BounceClass.COMPLAINT,
    BounceClass.HARD,
    BounceClass.SOFT,
    BounceClass.SENDER_FAULT,
    BounceClass.DELAY,
    BounceClass.AUTOREPLY,
    BounceClass.NOT_A_BOUNCE,
)


def _message_class(recipients: Iterable[RecipientReport]) -> BounceClass:
    present = {r.classification for r in recipients}
    return next((c for c in CLASS_PRIORITY if c in present), BounceClass.NOT_A_BOUNCE)


def classify_files(paths: Iterable[str | Path]) -> Iterator[dict[str, object]]:
    """Classify message files, one summary dict per file (for the command line)."""
    for path in paths:
        report = classify_message(Path(path).read_bytes())
        yield {
            "file": str(path),
            "recipients": [r.recipient for r in report.recipients],
            "class": str(report.classification),
            "status": ",".join(r.status for r in report.recipients),
            "reason": "; ".join(r.reason for r in report.recipients),
        }


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i is not None))


def _dedupe(reports: list[RecipientReport]) -> list[RecipientReport]:
    """One report per recipient; the first (most specific) wins."""
    seen: set[str] = set()
    kept = []
    for report in reports:
        if report.recipient and report.recipient in seen:
            continue
        seen.add(report.recipient)
        kept.append(report)
    return kept
