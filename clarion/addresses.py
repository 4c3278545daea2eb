"""Email addresses as Clarion keeps them: checked, the domain in IDNA form, lower case."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from clarion.errors import ValidationError


def normalise_email(raw: str, field_name: str = "email") -> str:
    """The canonical form of an address (IDN domain, lower case); ValidationError if invalid."""
    raw = (raw or "").strip()
    if not raw:
        raise ValidationError({field_name: "Please enter your email address."})
    if len(raw) > 320:
        raise ValidationError({field_name: "This address is too long."})
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError({field_name: f"This is not a valid email address: {exc}"}) from None
    return valid.normalized.lower()


def mask_email(email: str) -> str:
    """An address shown to whoever holds a reader's link: `a•••@example.org`, no more."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"
