"""The rule tables: diagnostic phrases and enhanced status codes, each to a reason and class.

Policy, in short: only a confirmed dead mailbox or domain is HARD; mailbox full, disabled
accounts, time-outs and anything unsure are SOFT; rejections of our own sending (reputation,
authentication, content, rate) are SENDER_FAULT. `verdict` applies the tables.
"""

from __future__ import annotations

import re

from clarion.models.inbound import BounceClass

# Short names keep the rule tables below readable.
H, S, F = BounceClass.HARD, BounceClass.SOFT, BounceClass.SENDER_FAULT


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
# (2.x.x, delivered, is settled before any rule: no text can make it a bounce.)
STATUS_RULES: tuple[tuple[re.Pattern[str], str, BounceClass], ...] = (
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
