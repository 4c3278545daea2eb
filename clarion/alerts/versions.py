"""An alert written once per language: its primary language and versions in the others.

A version holds the subject, preview text and the kind's fields in one enabled language; it
may be marked unfinished, and then its readers get the primary. Fields whose value does not
depend on the language (web addresses, the action's date, time and zone) may be left empty in a
version: it takes the primary's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarion import i18n
from clarion.alerts import kinds
from clarion.alerts.rendering import AlertContent
from clarion.config import get_settings
from clarion.errors import ValidationError
from clarion.models import Alert, AlertKind

# Field types that say the same in every language (a picked petition too): a version left
# empty takes the primary's.
NEUTRAL_TYPES = frozenset({"url", "date", "time", "timezone", "petition"})
MAX_SUBJECT = 300


def primary_language(alert: Alert) -> str:
    """The language the alert's own fields are written in (a removed one: the default)."""
    return i18n.resolve(alert.language or _audience_language(alert.audience))


def _audience_language(audience: Mapping[str, Any] | None) -> str | None:
    # Before versions an alert spoke its audience's language when that named exactly one.
    chosen = list((audience or {}).get("languages") or [])
    return chosen[0] if len(chosen) == 1 else None


def default_primary(audience: Mapping[str, Any] | None) -> str:
    """The primary language of an alert that does not name one."""
    return i18n.resolve(_audience_language(audience))


def label(code: str) -> str:
    """A language's name as CLARION_LANGUAGES gives it, else its code."""
    return dict(get_settings().languages).get(code, code)


def merged_fields(
    kind: AlertKind | str, primary: Mapping[str, Any], version: Mapping[str, Any]
) -> dict[str, str]:
    """A version's fields, its empty language-neutral ones taken from the primary."""
    merged = {k: str(v) for k, v in version.items() if str(v or "").strip()}
    for field in kinds.spec(kind).fields:
        if field.type in NEUTRAL_TYPES and field.name not in merged and primary.get(field.name):
            merged[field.name] = str(primary[field.name])
    return merged


def clean_versions(
    kind: AlertKind | str,
    primary_language: str,
    primary_fields: Mapping[str, Any],
    raw: Mapping[str, Mapping[str, Any]],
    errors: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Each version checked like the primary; problems go into `errors` as "<code>.<field>".

    An unfinished version may still lack required fields (it is work in progress), but what it
    has must be valid. Only what was typed is kept: neutral fields stay empty if left empty.
    """
    offered = dict(get_settings().languages)
    cleaned: dict[str, dict[str, Any]] = {}
    for code, version in raw.items():
        if code not in offered:
            errors[f"{code}.language"] = i18n.admin_gettext(
                "Unknown language %(language)s for a version; use %(offered)s.",
                language=repr(code),
                offered=", ".join(offered),
            )
            continue
        if code == primary_language:
            errors[f"{code}.language"] = i18n.admin_gettext(
                "%(language)s is the primary language: write that text in the main fields.",
                language=offered[code],
            )
            continue
        cleaned[code] = _clean_version(kind, code, primary_fields, version, errors)
    return cleaned


def _clean_version(
    kind: AlertKind | str,
    code: str,
    primary_fields: Mapping[str, Any],
    version: Mapping[str, Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    name = label(code)
    unfinished = bool(version.get("unfinished"))
    subject = " ".join(str(version.get("subject") or "").split())
    preheader = " ".join(str(version.get("preheader") or "").split())
    if not subject and not unfinished:
        errors[f"{code}.subject"] = f"{name} version: the subject is required."
    elif len(subject) > MAX_SUBJECT:
        errors[f"{code}.subject"] = (
            f"{name} version: keep the subject under {MAX_SUBJECT} characters (now {len(subject)})."
        )
    if len(preheader) > MAX_SUBJECT:
        errors[f"{code}.preheader"] = f"{name} version: keep the preview text under 300 characters."
    typed = {k: str(v or "").strip() for k, v in dict(version.get("fields") or {}).items()}
    try:
        kinds.validate_fields(
            kind, merged_fields(kind, primary_fields, typed), require=not unfinished
        )
    except ValidationError as exc:
        for field, message in exc.errors.items():
            errors[f"{code}.{field}"] = f"{name} version: {message}"
    known = {f.name for f in kinds.spec(kind).fields}
    return {
        "subject": subject,
        "preheader": preheader,
        "fields": {k: v for k, v in typed.items() if v and k in known},
        "unfinished": unfinished,
    }


def finished(alert: Alert) -> list[str]:
    """The codes of the alert's finished versions in languages enabled now, in enabled order."""
    versions = alert.translations or {}
    primary = primary_language(alert)
    return [
        code
        for code in i18n.enabled()
        if code != primary and code in versions and not versions[code].get("unfinished")
    ]


def content(alert: Alert, code: str | None = None) -> tuple[AlertContent, str]:
    """What the renderer takes for the version in `code` (the primary if it has none), and the
    language it is in."""
    version = (alert.translations or {}).get(code or "")
    if version is None:
        primary = AlertContent(
            kind=alert.kind.value,
            subject=alert.subject,
            fields=dict(alert.fields or {}),
            preheader=alert.preheader,
        )
        return primary, primary_language(alert)
    versioned = AlertContent(
        kind=alert.kind.value,
        subject=version.get("subject", ""),
        fields=merged_fields(alert.kind, alert.fields or {}, version.get("fields") or {}),
        preheader=version.get("preheader", ""),
    )
    return versioned, str(code)


def reader_counts(by_language: Mapping[str | None, int], alert: Alert) -> dict[str, int]:
    """How many readers get each version, the primary's code first: a reader whose language
    has a finished version gets it, everyone else the primary."""
    versions = set(finished(alert))
    primary = primary_language(alert)
    counts = {primary: 0, **{code: 0 for code in finished(alert)}}
    for code, n in by_language.items():
        counts[code if code in versions else primary] += n
    return counts
