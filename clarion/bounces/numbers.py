"""The numbers of the bounce policy: kept in the database, edited by owners, every change audited.

`clarion.bounces.policy` applies them; the defaults are the issue's: a soft bounce counts at most
once a day, three within fifteen days suppress the address, five sender-fault refusals for one
alert within ten minutes pause it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from sqlalchemy.orm import Session

from clarion import audit
from clarion.errors import ValidationError
from clarion.i18n import NA_, admin_gettext
from clarion.models import AppSetting, Editor

SETTING_KEY = "bounce_policy"


@dataclass(frozen=True)
class BouncePolicy:
    """How many reports of which kind do what, and over which period."""

    soft_limit: int = 3
    soft_window_days: int = 15
    # A delivery accepted by the receiving server with no report about it for this long is a
    # successful delivery: it resets the address's soft-bounce count (see clarion.bounces.policy).
    success_quiet_hours: int = 72
    sender_fault_limit: int = 5
    sender_fault_window_minutes: int = 10


# field -> (label for people, smallest, largest)
LIMITS: dict[str, tuple[str, int, int]] = {
    "soft_limit": (NA_("Soft bounces that suppress an address"), 1, 20),
    "soft_window_days": (NA_("Days within which they must fall"), 1, 90),
    "success_quiet_hours": (
        NA_("Hours without a report before a delivery counts as successful"),
        1,
        720,
    ),
    "sender_fault_limit": (NA_("Sender-fault reports that pause an alert"), 1, 1000),
    "sender_fault_window_minutes": (NA_("Minutes within which they must fall"), 1, 1440),
}


def load_policy(session: Session) -> BouncePolicy:
    """The policy in effect: the stored values over the defaults."""
    row = session.get(AppSetting, SETTING_KEY)
    stored = row.value if row is not None and isinstance(row.value, dict) else {}
    known = {f.name for f in fields(BouncePolicy)}
    return BouncePolicy(**{k: int(v) for k, v in stored.items() if k in known})


def parse_policy(form: Mapping[str, str]) -> BouncePolicy:
    """A policy from a form; ValidationError names every field out of range."""
    values: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name, (label, low, high) in LIMITS.items():
        raw = str(form.get(name, "")).strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            errors[name] = admin_gettext(
                "%(label)s: a whole number from %(low)s to %(high)s.",
                label=admin_gettext(label),
                low=low,
                high=high,
            )
            continue
        values[name] = int(raw)
    if errors:
        raise ValidationError(errors)
    return BouncePolicy(**values)


def save_policy(
    session: Session, actor: Editor, form: Mapping[str, str], ip: str | None = None
) -> BouncePolicy:
    """Store a new policy (owners); the audit log keeps the old and new values."""
    from clarion.editors import require

    require(actor, "manage_settings")
    new = parse_policy(form)
    old = load_policy(session)
    row = session.get(AppSetting, SETTING_KEY)
    if row is None:
        row = AppSetting(key=SETTING_KEY, value={})
        session.add(row)
    row.value = asdict(new)
    audit.record(
        session, actor, "settings.bounce_policy", SETTING_KEY, ip, old=asdict(old), new=asdict(new)
    )
    return new
