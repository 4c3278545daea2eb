"""Email addresses as Clarion keeps them: checked, the domain in IDNA form, lower case."""

from __future__ import annotations

import re

import idna
from email_validator import EmailNotValidError, validate_email

from clarion import i18n
from clarion.errors import ValidationError
from clarion.i18n import gettext as _


def normalise_email(raw: str, field_name: str = "email") -> str:
    """The canonical form of an address (IDN domain, lower case); ValidationError if invalid."""
    raw = (raw or "").strip()
    if not raw:
        raise ValidationError({field_name: _("Please enter your email address.")})
    if len(raw) > 320:
        raise ValidationError({field_name: _("This address is too long.")})
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        # The validator explains in English only: other languages get a plain sentence.
        if i18n.current() == i18n.SOURCE_LANGUAGE:
            message = f"This is not a valid email address: {exc}"
        else:
            message = _("This is not a valid email address. Please check it.")
        raise ValidationError({field_name: message}) from None
    return valid.normalized.lower()


# Whatever has an @ between two runs of characters that cannot end an address in a reply.
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>()\[\]{}\"',;:@]+@[^\s<>()\[\]{}\"',;:@]+")
# Providers known to ignore dots in the local part; all of them deliver "+tag" to the mailbox.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_mailbox(email: str) -> str:
    """The mailbox an address reaches: lower case, "+tag" dropped, Gmail's dots dropped.

    Only for rate limits: `victim+1@`, `victim+2@` and `v.ictim@gmail.com` all fill one inbox,
    so they share one budget of confirmation mails. Never used as the address itself.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS_DOMAINS:
        domain = _DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


def mask_email(email: str) -> str:
    """An address shown to whoever holds a reader's link: `a•••@example.org`, no more."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


def without_addresses(text: str) -> str:
    """`text` (a mail server's reply, an error) with every address in it replaced, for logs."""
    return _ADDRESS_IN_TEXT.sub("(address)", text)


def wire_address(email: str) -> str:
    """The address as it goes into SMTP and headers: the domain as IDNA 2008 A-labels (UTS 46),
    so ASCII-only servers can route it. The local part is left as it is: only SMTPUTF8 can
    carry a non-ASCII one, and no encoding may stand in for it (RFC 6531, RFC 2047 5)."""
    if email.isascii():
        return email  # the common case: no IDNA work at all
    local, _, domain = email.rpartition("@")
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        try:  # a domain IDNA 2008 refuses: IDNA 2003 as the last resort, as before
            return f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            return email


def needs_smtputf8(wire: str) -> bool:
    """Whether an address (in its wire form) can only be sent with SMTPUTF8."""
    return not wire.isascii()
