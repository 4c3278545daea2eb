"""The campaign's identity: its name, logo, accent colour, addresses and default sender.

Owners edit it (audited); every public page and every mail shows it. It is kept in one app
setting; CLARION_SITE_NAME and CLARION_FROM are only its first defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from clarion import audit
from clarion.addresses import normalise_email
from clarion.alerts import media, uploads
from clarion.alerts.rendering import SiteContext
from clarion.config import get_settings
from clarion.editors import require
from clarion.errors import ValidationError
from clarion.i18n import admin_gettext
from clarion.inputs import has_control_chars
from clarion.models import AppSetting, Editor

SETTING_KEY = "identity"
DEFAULT_ACCENT = "#b3261e"
# WCAG 2.1 AA for normal text: links and white button labels must be readable on white.
MIN_CONTRAST = 4.5
MAX_NAME = 100
MAX_POSTAL = 300
MAX_URL = 500
TEXT_FIELDS = (
    "name",
    "accent",
    "blog_url",
    "privacy_url",
    "postal",
    "sender_name",
    "sender_email",
)


@dataclass(frozen=True)
class Identity:
    """Who the readers hear from; empty strings mean "not set"."""

    name: str
    sender_email: str
    sender_name: str = ""
    accent: str = DEFAULT_ACCENT
    logo: str = ""  # a media file name (re-encoded upload)
    blog_url: str = ""
    privacy_url: str = ""
    postal: str = ""

    @property
    def sender(self) -> str:
        """The From header of mails that name no other sender."""
        return formataddr((self.sender_name, self.sender_email))

    def logo_url(self, base_url: str) -> str:
        """The logo's public address, or "" without a logo."""
        return media.media_url(base_url, self.logo) if self.logo else ""


def defaults() -> Identity:
    """The identity before an owner sets one: from CLARION_SITE_NAME and CLARION_FROM."""
    settings = get_settings()
    name, address = parseaddr(settings.mail_from)
    return Identity(name=settings.site_name, sender_name=name, sender_email=address)


def load(session: Session) -> Identity:
    """The identity in effect: the stored values over the defaults."""
    row = session.get(AppSetting, SETTING_KEY)
    stored = row.value if row is not None and isinstance(row.value, dict) else {}
    known = {f.name for f in fields(Identity)}
    return replace(defaults(), **{k: str(v) for k, v in stored.items() if k in known})


def site_context(session: Session, list_name: str = "") -> SiteContext:
    """The identity as mail layouts see it, for the installation's address."""
    base_url = get_settings().base_url
    who = load(session)
    return SiteContext(
        site_name=who.name,
        base_url=base_url,
        list_name=list_name,
        accent=who.accent,
        logo_url=who.logo_url(base_url),
        blog_url=who.blog_url,
        privacy_url=who.privacy_url,
        postal=who.postal,
    )


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_on_white(colour: str) -> float:
    """The WCAG contrast ratio of a #rrggbb colour against white (1 to 21)."""
    return 1.05 / (relative_luminance(colour) + 0.05)


def _accent(raw: str, errors: dict[str, str]) -> str:
    colour = raw.strip().lower()
    if len(colour) == 4 and colour.startswith("#"):  # #abc is #aabbcc
        colour = "#" + "".join(c * 2 for c in colour[1:])
    if len(colour) != 7 or colour[0] != "#" or not all(c in "0123456789abcdef" for c in colour[1:]):
        errors["accent"] = admin_gettext("Give the colour as #rrggbb, for example #b3261e.")
        return raw
    ratio = contrast_on_white(colour)
    if ratio < MIN_CONTRAST:
        shown = f"{int(ratio * 100) / 100:.2f}"  # rounded down: 4.499 is not shown as 4.50
        errors["accent"] = admin_gettext(
            "This colour has a contrast of %(ratio)s:1 on white; links and buttons need at "
            "least %(minimum)s:1 (WCAG AA). Choose a darker colour.",
            ratio=shown,
            minimum=MIN_CONTRAST,
        )
    return colour


def _url(raw: str, name: str, errors: dict[str, str]) -> str:
    url = raw.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(url) > MAX_URL:
        errors[name] = admin_gettext(
            "A full web address starting with https://, for example https://example.org/privacy."
        )
    elif has_control_chars(url) or " " in url:
        errors[name] = admin_gettext("A web address has no spaces or control characters.")
    return url


def _line(raw: str, name: str, limit: int, errors: dict[str, str], *, required: bool = False):
    value = " ".join(raw.split())  # one line in every footer and header
    if required and not value:
        errors[name] = admin_gettext("This field is required.")
    elif len(value) > limit:
        errors[name] = admin_gettext("Keep it under %(limit)s characters.", limit=limit)
    elif has_control_chars(value):
        errors[name] = admin_gettext("Remove the control characters.")
    return value


def parse(form: Mapping[str, str], current: Identity) -> Identity:
    """An identity from a form (the logo is kept from `current`); ValidationError names every
    field to fix."""
    errors: dict[str, str] = {}

    def text(name: str) -> str:
        return str(form.get(name, ""))

    sender_email = text("sender_email").strip()
    try:
        sender_email = normalise_email(sender_email, "sender_email")
    except ValidationError as exc:
        errors.update(exc.errors)
    values = Identity(
        name=_line(text("name"), "name", MAX_NAME, errors, required=True),
        sender_name=_line(text("sender_name"), "sender_name", MAX_NAME, errors),
        sender_email=sender_email,
        accent=_accent(text("accent"), errors),
        logo=current.logo,
        blog_url=_url(text("blog_url"), "blog_url", errors),
        privacy_url=_url(text("privacy_url"), "privacy_url", errors),
        postal=_line(text("postal"), "postal", MAX_POSTAL, errors),
    )
    if errors:
        raise ValidationError(errors)
    return values


def save(
    session: Session,
    actor: Editor,
    form: Mapping[str, str],
    logo: BinaryIO | None = None,
    instance_dir: Path | None = None,
    ip: str | None = None,
) -> Identity:
    """Store a new identity (owners): a new logo is re-encoded, `remove_logo` drops it; the
    audit log keeps the old and new values."""
    require(actor, "manage_settings")
    old = load(session)
    new = parse(form, old)
    if form.get("remove_logo"):
        new = replace(new, logo="")
    elif logo is not None:
        new = replace(new, logo=uploads.store_upload(logo, instance_dir or _instance(), "logo"))
    row = session.get(AppSetting, SETTING_KEY)
    if row is None:
        row = AppSetting(key=SETTING_KEY, value={})
        session.add(row)
    row.value = asdict(new)
    audit.record(
        session, actor, "settings.identity", SETTING_KEY, ip, old=asdict(old), new=asdict(new)
    )
    return new


def _instance() -> Path:
    return get_settings().instance_dir
