"""Alert drafts: per-kind fields, audience, custom layout, preview and scheduling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from clarion import audit, i18n
from clarion.alerts import identity, kinds, media, personal, petition_pick, segments, versions
from clarion.alerts.rendering import AlertContent, RenderedMail, SiteContext, render_alert
from clarion.config import get_settings
from clarion.db import set_based, utcnow
from clarion.editors import require
from clarion.errors import InvalidTransition, NotFound, ValidationError
from clarion.i18n import admin_gettext
from clarion.models import (
    Alert,
    AlertKind,
    AlertRole,
    AlertStatus,
    Editor,
    MailingList,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    Tag,
)
from clarion.paging import PAGE_SIZE, Page, keyset_page

EDITABLE = {AlertStatus.DRAFT, AlertStatus.SCHEDULED}
# A hashtag day's announcement and reminder take its content when they start: they are changed
# through the hashtag day (clarion.alerts.hashtag_days), not on their own.
PLANNED_ROLES = {AlertRole.ANNOUNCEMENT.value, AlertRole.REMINDER.value}
PLANNED_REFUSAL = (
    "This is the {role} of a hashtag day: it takes that day's content when it starts. Edit the "
    "hashtag day, and change its time there."
)
MAX_LAYOUT = 200_000
STATE_HELP = {
    AlertStatus.DRAFT: i18n.NA_("Draft: not sent; edit, preview, test, then schedule or send."),
    AlertStatus.SCHEDULED: i18n.NA_(
        "Scheduled: it starts sending at the time shown, unless unscheduled."
    ),
    AlertStatus.SENDING: i18n.NA_("Sending now."),
    AlertStatus.PAUSED: i18n.NA_("Paused: nothing more goes out until it is resumed."),
    AlertStatus.SENT: i18n.NA_("Sent."),
    AlertStatus.CANCELLED: i18n.NA_("Cancelled: what was not sent will not be sent."),
}


@dataclass
class Draft:
    """What an editor submits, from the form or a JSON file: the same fields either way."""

    kind: str
    subject: str = ""
    name: str = ""
    preheader: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    lists: list[int] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    sender_list_id: int | None = None
    archive_public: bool = False
    layout_mjml: str = ""
    # The primary language ("": the audience's one language, else the instance default) and
    # versions in others: {code: {"subject", "preheader", "fields", "unfinished"}}.
    language: str = ""
    translations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A petition alert leaves out readers who signed its petition, unless this is set.
    include_signers: bool = False
    # Conditions on what readers did (clarion.alerts.segments): a tree, its JSON text as typed
    # (checked and parsed when saved), or None.
    conditions: Any = None

    @classmethod
    def from_json(cls, data: Any) -> Draft:
        """A draft from parsed JSON; ValidationError names each field of the wrong type."""
        if not isinstance(data, Mapping):
            raise ValidationError({"file": 'The JSON must be an object, like {"kind": ...}.'})
        errors: dict[str, str] = {}
        known = {"kind", "subject", "name", "preheader", "fields", "audience", "sender_list_id",
                 "archive_public", "layout_mjml", "language", "translations"}  # fmt: skip
        for key in set(data) - known:
            errors[key] = admin_gettext(
                "Unknown field; the fields are: %(fields)s.", fields=", ".join(sorted(known))
            )
        texts = {
            k: data.get(k, "")
            for k in ("kind", "subject", "name", "preheader", "layout_mjml", "language")
        }
        for key, value in texts.items():
            if not isinstance(value, str):
                errors[key] = admin_gettext("Must be text.")
        fields = data.get("fields", {})
        if not isinstance(fields, Mapping) or not all(isinstance(v, str) for v in fields.values()):
            errors["fields"] = 'Must be an object of text values, like {"title": "..."}.'
        audience = data.get("audience", {})
        if not isinstance(audience, Mapping):
            errors["audience"] = 'Must be an object: {"lists": [...], "tags": [...]}.'
            audience = {}
        for key in ("lists", "tags"):
            value = audience.get(key, [])
            if not isinstance(value, list) or not all(isinstance(i, int) for i in value):
                errors[key] = admin_gettext("Must be a list of ids (numbers).")
        if not isinstance(audience.get("languages", []), list):
            errors["languages"] = admin_gettext("Must be a list of language codes.")
        if not isinstance(audience.get("include_signers", False), bool):
            errors["include_signers"] = admin_gettext("Must be true or false.")
        conditions = _conditions_from_json(audience.get("conditions"), errors)
        sender = data.get("sender_list_id")
        if sender is not None and not isinstance(sender, int):
            errors["sender_list_id"] = admin_gettext("Must be a list id (a number) or null.")
        translations = _translations_from_json(data.get("translations", {}), errors)
        if errors:
            raise ValidationError(errors)
        return cls(
            kind=texts["kind"],
            subject=texts["subject"],
            name=texts["name"],
            preheader=texts["preheader"],
            fields=dict(fields),
            lists=list(audience.get("lists", [])),
            tags=list(audience.get("tags", [])),
            languages=[str(c) for c in audience.get("languages", [])],
            sender_list_id=sender,
            archive_public=bool(data.get("archive_public", False)),
            layout_mjml=texts["layout_mjml"],
            language=texts["language"],
            translations=translations,
            include_signers=audience.get("include_signers") is True,
            conditions=conditions,
        )

    @classmethod
    def from_json_names(cls, session: Session, data: Any) -> Draft:
        """Like from_json, also accepting list slugs and tag names instead of ids."""
        if isinstance(data, Mapping) and isinstance(data.get("audience"), Mapping):
            audience = dict(data["audience"])
            errors: dict[str, str] = {}
            slugs = dict(session.execute(select(MailingList.slug, MailingList.id)).all())
            names = {n.lower(): i for n, i in session.execute(select(Tag.name, Tag.id))}
            for key, known in (("lists", slugs), ("tags", names)):
                values = audience.get(key, [])
                if isinstance(values, list):
                    audience[key] = [_resolve(v, known, key, errors) for v in values]
            sender = data.get("sender_list_id")
            if isinstance(sender, str):
                data = {**data, "sender_list_id": _resolve(sender, slugs, "sender_list_id", errors)}
            if errors:
                raise ValidationError(errors)
            data = {**data, "audience": audience}
        return cls.from_json(data)

    @classmethod
    def from_alert(cls, alert: Alert) -> Draft:
        """The draft an existing alert was saved from (to fill the edit form)."""
        audience = alert.audience or {}
        return cls(
            kind=alert.kind.value,
            subject=alert.subject,
            name=alert.name,
            preheader=alert.preheader,
            fields=dict(alert.fields or {}),
            lists=list(audience.get("lists", [])),
            tags=list(audience.get("tags", [])),
            languages=list(audience.get("languages", [])),
            sender_list_id=alert.sender_list_id,
            archive_public=alert.archive_public,
            layout_mjml=alert.layout_mjml or "",
            language=alert.language or "",
            translations={k: dict(v) for k, v in (alert.translations or {}).items()},
            include_signers=bool(audience.get("include_signers")),
            conditions=audience.get("conditions") or None,
        )


VERSION_KEYS = ("subject", "preheader", "fields", "unfinished")


def _translations_from_json(raw: Any, errors: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The "translations" object of a JSON draft; each problem named by its place in the file."""
    if not isinstance(raw, Mapping):
        errors["translations"] = 'Must be an object by language code: {"ru": {"subject": ...}}.'
        return {}
    found: dict[str, dict[str, Any]] = {}
    for code, version in raw.items():
        where = f"translations.{code}"
        if not isinstance(version, Mapping):
            errors[where] = 'Must be an object: {"subject": ..., "fields": {...}}.'
            continue
        for key in set(version) - set(VERSION_KEYS):
            errors[f"{where}.{key}"] = f"Unknown field; the fields are: {', '.join(VERSION_KEYS)}."
        for key in ("subject", "preheader"):
            if not isinstance(version.get(key, ""), str):
                errors[f"{where}.{key}"] = "Must be text."
        fields = version.get("fields", {})
        if not isinstance(fields, Mapping) or not all(isinstance(v, str) for v in fields.values()):
            errors[f"{where}.fields"] = 'Must be an object of text values, like {"title": "..."}.'
            fields = {}
        if not isinstance(version.get("unfinished", False), bool):
            errors[f"{where}.unfinished"] = "Must be true or false."
        found[str(code)] = {
            "subject": str(version.get("subject", "")),
            "preheader": str(version.get("preheader", "")),
            "fields": dict(fields),
            "unfinished": version.get("unfinished") is True,
        }
    return found


def _resolve(value: Any, known: dict[str, int], key: str, errors: dict[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    found = known.get(value) if key != "tags" else known.get(value.lower())
    if found is None:
        errors[key] = f"{value!r} is not known; known: {', '.join(sorted(known)) or 'none'}."
        return value
    return found


# --- reading ---------------------------------------------------------------------------


def get_alert(session: Session, alert_id: int) -> Alert:
    """The alert with this id, or NotFound."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(admin_gettext("No such alert."))
    return alert


def page(
    session: Session,
    status: str = "",
    after: int | None = None,
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> Page[Alert]:
    """Alerts newest first, optionally in one state."""
    query = select(Alert)
    if status in {s.value for s in AlertStatus}:
        query = query.where(Alert.status == AlertStatus(status))
    return keyset_page(
        session, query, Alert.id, lambda a: a.id, after=after, before=before, size=size
    )


def site_context(session: Session, alert: Alert) -> SiteContext:
    """The installation and the sending list's name, for layouts."""
    sender = session.get(MailingList, alert.sender_list_id) if alert.sender_list_id else None
    return identity.site_context(session, sender.name if sender else "")


def neutral_recipient(base_url: str, lang: str | None = None) -> dict[str, str]:
    """Recipient values that identify nobody: for previews, tests and the public archive."""
    return {
        "greeting": i18n.gettext("Hello,", i18n.resolve(lang)),
        "unsubscribe_url": f"{base_url}/subscribe",
        "preferences_url": f"{base_url}/subscribe",
    }


def render_preview(
    session: Session,
    alert: Alert,
    language: str | None = None,
    recipient: Mapping[str, str] | None = None,
    reader: Mapping[str, str] | None = None,
) -> RenderedMail:
    """The alert as a reader would get it: the version in `language` if it has one, else the
    primary; with neutral recipient values and personalisation fallbacks unless `recipient`
    (greeting, links) and `reader` (personal.reader_values) are given."""
    site = site_context(session, alert)
    content, lang = versions.content(alert, language)
    fields = petition_pick.with_progress(session, content.kind, content.fields)
    fields = {**fields, **kinds.stay_fields(alert.stay_days, site.base_url)}
    return render_alert(
        AlertContent(content.kind, content.subject, fields, content.preheader),
        dict(recipient or neutral_recipient(site.base_url, lang)),
        site,
        alert.layout_mjml or None,
        lang,
        reader=reader,
    )


# --- validation ------------------------------------------------------------------------


def _conditions_from_json(raw: Any, errors: dict[str, str]) -> dict[str, Any] | None:
    """The audience's conditions parsed (segments.parse), their faults added to `errors`."""
    if raw is None:
        return None
    try:
        return segments.parse(raw, "audience.conditions")
    except ValidationError as exc:
        errors.update(exc.errors)
        return None


def _check_conditions(session: Session, draft: Draft, errors: dict[str, str]) -> None:
    """The draft's conditions parsed in place and checked; their faults added to `errors`."""
    if draft.conditions is None or (
        isinstance(draft.conditions, str) and not draft.conditions.strip()
    ):
        draft.conditions = None
        return
    try:
        draft.conditions = segments.parse(draft.conditions, "audience.conditions")
        segments.check(session, draft.conditions, path="audience.conditions")
    except ValidationError as exc:
        errors.update(exc.errors)


def _check_audience(session: Session, draft: Draft, errors: dict[str, str]) -> None:
    _check_conditions(session, draft, errors)
    known_lists = set(session.scalars(select(MailingList.id)))
    if not set(draft.lists) <= known_lists:
        errors["lists"] = admin_gettext("One of the chosen lists does not exist.")
    if draft.tags and not set(draft.tags) <= set(session.scalars(select(Tag.id))):
        errors["tags"] = admin_gettext("One of the chosen tags does not exist.")
    offered = dict(get_settings().languages)
    unknown = [code for code in draft.languages if code not in offered]
    if unknown:
        errors["languages"] = admin_gettext(
            "Unknown language %(code)s; use %(codes)s.",
            code=repr(unknown[0]),
            codes=", ".join(offered),
        )
    if draft.sender_list_id is not None and draft.sender_list_id not in draft.lists:
        errors["sender_list_id"] = admin_gettext(
            "The sender must be one of the lists the alert goes to."
        )


def clean(session: Session, draft: Draft) -> dict[str, Any]:
    """Every field checked at once, versions too; ValidationError maps each bad field (a
    version's as "<code>.<field>") to what to fix."""
    errors: dict[str, str] = {}
    fields: dict[str, str] = {}
    try:
        kind = kinds.spec(draft.kind).kind
    except ValidationError as exc:
        raise ValidationError(exc.errors) from None
    raw_fields, raw_versions = _with_petition(session, kind, draft, errors)
    try:
        fields = kinds.validate_fields(kind, raw_fields)
    except ValidationError as exc:
        errors.update(exc.errors)
    subject = " ".join(draft.subject.split())
    if not subject:
        errors["subject"] = admin_gettext(
            "Subject is required: it is what readers see in their inbox."
        )
    elif len(subject) > 300:
        errors["subject"] = admin_gettext(
            "Keep the subject under 300 characters (now %(length)s).", length=len(subject)
        )
    if len(draft.preheader) > 300:
        errors["preheader"] = admin_gettext("Keep the preview text under 300 characters.")
    if len(draft.name) > 200:
        errors["name"] = admin_gettext("Keep the name under 200 characters.")
    if len(draft.layout_mjml) > MAX_LAYOUT:
        errors["layout"] = admin_gettext(
            "The layout is larger than %(size)s KB.", size=MAX_LAYOUT // 1000
        )
    _check_audience(session, draft, errors)
    language = draft.language or versions.default_primary({"languages": draft.languages})
    if language not in i18n.enabled():
        errors["language"] = admin_gettext(
            "Unknown language %(code)s; use %(codes)s.",
            code=repr(language),
            codes=", ".join(i18n.enabled()),
        )
    translations = versions.clean_versions(kind, language, fields, raw_versions, errors)
    _check_personal(kind, draft, raw_fields, errors)
    if errors:
        raise ValidationError(errors)
    return {
        "kind": kind,
        "subject": subject,
        "name": " ".join(draft.name.split()) or subject,
        "preheader": " ".join(draft.preheader.split()),
        "fields": fields,
        "audience": _audience(kind, fields, draft),
        "sender_list_id": draft.sender_list_id or (min(draft.lists) if draft.lists else None),
        "archive_public": draft.archive_public,
        "layout_mjml": draft.layout_mjml.strip() or None,
        "language": language,
        "translations": translations,
    }


def _check_personal(
    kind: AlertKind, draft: Draft, raw_fields: Mapping[str, Any], errors: dict[str, str]
) -> None:
    """Personalisation fields in subjects, preview texts and Markdown, each checked against the
    short list (personal.FIELDS); an unknown one is named with what to use instead."""
    markdown = [f.name for f in kinds.spec(kind).fields if f.type == "markdown"]
    texts = {"subject": draft.subject, "preheader": draft.preheader}
    texts |= {name: str(raw_fields.get(name) or "") for name in markdown}
    for code, version in draft.translations.items():
        texts[f"{code}.subject"] = str(version.get("subject") or "")
        texts[f"{code}.preheader"] = str(version.get("preheader") or "")
        own = version.get("fields") or {}
        texts |= {f"{code}.{name}": str(own.get(name) or "") for name in markdown}
    personal.check(texts, errors)


def draft_alert(session: Session, draft: Draft) -> tuple[Alert, dict[str, str]]:
    """What is typed as an alert never added to the session, for a live preview, and the
    problems found in it so far (fields, versions, personalisation), each named; the audience
    is not checked: the preview does not depend on it."""
    kind = kinds.spec(draft.kind).kind
    errors: dict[str, str] = {}
    raw_fields, raw_versions = _with_petition(session, kind, draft, errors)
    try:
        kinds.validate_fields(kind, raw_fields, require=False)
    except ValidationError as exc:
        errors.update(exc.errors)
    fields = {k: str(v).strip() for k, v in raw_fields.items() if str(v or "").strip()}
    language = draft.language or versions.default_primary({"languages": draft.languages})
    language = i18n.resolve(language)
    translations = versions.clean_versions(kind, language, fields, raw_versions, errors)
    _check_personal(kind, draft, raw_fields, errors)
    alert = Alert(
        kind=kind,
        subject=" ".join(draft.subject.split()),
        name=draft.name,
        preheader=" ".join(draft.preheader.split()),
        fields=fields,
        language=language,
        translations=translations,
        layout_mjml=draft.layout_mjml.strip() or None,
        sender_list_id=draft.sender_list_id or (min(draft.lists) if draft.lists else None),
    )
    return alert, errors


def _with_petition(
    session: Session, kind: AlertKind, draft: Draft, errors: dict[str, str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The primary's fields and the versions, filled from the picked petition (a petition
    that no longer exists goes into `errors`, and the fields stay as typed)."""
    if kind != AlertKind.PETITION:
        return dict(draft.fields), dict(draft.translations)
    base_url = get_settings().base_url
    try:
        fields = petition_pick.fill(session, draft.fields, base_url)
    except ValidationError as exc:
        errors.update(exc.errors)
        return dict(draft.fields), dict(draft.translations)
    if petition_pick.picked_id(fields) is None:
        return fields, dict(draft.translations)
    filled_versions = {}
    for code, version in draft.translations.items():
        # A version writes its own title and target, else it shows the petition's; the pick,
        # its address and image are language-neutral: the primary's hold.
        own = {**dict(version.get("fields") or {}), "petition_id": fields["petition_id"]}
        own = petition_pick.fill(session, own, base_url)
        for neutral in ("petition_id", "petition_url", "image_url"):
            own.pop(neutral, None)
        filled_versions[code] = {**version, "fields": own}
    return fields, filled_versions


def _audience(kind: AlertKind, fields: Mapping[str, str], draft: Draft) -> dict[str, Any]:
    """The stored audience: lists, tags, languages, and for a petition alert whether its
    signers are left out (`skip_signers_of`: the petition) or included on purpose."""
    audience: dict[str, Any] = {
        "lists": sorted(set(draft.lists)),
        "tags": sorted(set(draft.tags)),
        "languages": sorted(set(draft.languages)),
    }
    if draft.conditions:
        audience["conditions"] = draft.conditions
    petition_id = petition_pick.picked_id(fields) if kind == AlertKind.PETITION else None
    if petition_id is not None:
        if draft.include_signers:
            audience["include_signers"] = True
        else:
            audience["skip_signers_of"] = petition_id
    return audience


def _copy_images(values: dict[str, Any]) -> None:
    """A new post's image, and every image of Markdown fields, copied once to our media (in the
    primary and every version), so that no mail ever loads one from elsewhere (nor ships an
    image without its source)."""
    settings = get_settings()
    markdown = [f.name for f in kinds.spec(values["kind"]).fields if f.type == "markdown"]
    versions_fields = [("", values["fields"])]
    versions_fields += [(f"{code}.", v["fields"]) for code, v in values["translations"].items()]
    for prefix, fields in versions_fields:
        image = fields.get("image_url")
        if values["kind"] in (AlertKind.NEW_POST, AlertKind.PETITION) and image:
            fields["image_url"] = media.copy_image(image, settings.instance_dir, settings.base_url)
        for name in markdown:
            if fields.get(name):
                fields[name] = media.copy_markdown_images(
                    fields[name], prefix + name, settings.instance_dir, settings.base_url
                )


def _check_renders(session: Session, alert: Alert) -> None:
    """Refuse what would not render: a layout that does not compile names what and where;
    each finished version is rendered too, its problems named with its language."""
    render_preview(session, alert)
    for code in versions.finished(alert):
        try:
            render_preview(session, alert, code)
        except ValidationError as exc:
            name = versions.label(code)
            raise ValidationError(
                {f"{code}.{k}": f"{name} version: {v}" for k, v in exc.errors.items()}
            ) from None


# --- changing --------------------------------------------------------------------------


def create_draft(
    session: Session, editor: Editor | None, draft: Draft, ip: str | None = None
) -> Alert:
    """Save a new draft; refused, with every problem named, if it would not render.

    `editor` is None from the command line, whose user already controls the installation.
    """
    if editor is not None:
        require(editor, "compose")
    values = clean(session, draft)
    _copy_images(values)
    alert = Alert(**values, status=AlertStatus.DRAFT, created_by_id=editor.id if editor else None)
    session.add(alert)
    session.flush()
    _check_renders(session, alert)
    audit.record(session, editor, "alert.create", f"alert:{alert.id}", ip, kind=alert.kind.value)
    return alert


def update_draft(
    session: Session, editor: Editor, alert: Alert, draft: Draft, ip: str | None = None
) -> None:
    """Save changes to a draft or scheduled alert (the kind stays what it was)."""
    require(editor, "compose")
    if alert.status not in EDITABLE:
        raise InvalidTransition(
            admin_gettext(
                "This alert can no longer be edited (%(state)s).",
                state=admin_gettext(alert.status.value),
            )
        )
    if alert.role in PLANNED_ROLES:
        raise InvalidTransition(PLANNED_REFUSAL.format(role=alert.role))
    draft.kind = alert.kind.value
    values = clean(session, draft)
    _copy_images(values)
    if alert.status == AlertStatus.SCHEDULED and not values["audience"]["lists"]:
        raise ValidationError(
            {"lists": admin_gettext("A scheduled alert needs at least one list.")}
        )
    for key, value in values.items():
        setattr(alert, key, value)
    session.flush()
    _check_renders(session, alert)


def duplicate(session: Session, editor: Editor, alert: Alert, ip: str | None = None) -> Alert:
    """A new draft with the same kind, content and audience."""
    require(editor, "compose")
    copy = Alert(
        kind=alert.kind,
        name=f"Copy of {alert.name}"[:200],
        subject=alert.subject,
        preheader=alert.preheader,
        fields=dict(alert.fields or {}),
        audience=dict(alert.audience or {}),
        sender_list_id=alert.sender_list_id,
        archive_public=alert.archive_public,
        layout_mjml=alert.layout_mjml,
        language=alert.language,
        translations={k: dict(v) for k, v in (alert.translations or {}).items()},
        status=AlertStatus.DRAFT,
        created_by_id=editor.id,
    )
    session.add(copy)
    session.flush()
    audit.record(session, editor, "alert.duplicate", f"alert:{copy.id}", ip, source=alert.id)
    return copy


def delete_draft(session: Session, editor: Editor, alert: Alert, ip: str | None = None) -> None:
    """Delete an alert that was never sent."""
    require(editor, "compose")
    if alert.status != AlertStatus.DRAFT:
        raise InvalidTransition(admin_gettext("Only drafts can be deleted; unschedule it first."))
    planned = select(Alert.id).where(
        Alert.parent_id == alert.id,
        Alert.role.in_(PLANNED_ROLES),
        Alert.status == AlertStatus.SCHEDULED,
    )
    if session.scalar(planned.limit(1)) is not None:
        raise InvalidTransition(
            admin_gettext(
                "Its announcement or reminder is scheduled: remove them from the plan first."
            )
        )
    audit.record(session, editor, "alert.delete", f"alert:{alert.id}", ip, name=alert.name)
    session.delete(alert)


# --- scheduling ------------------------------------------------------------------------


def parse_local(value: str, zone_name: str) -> datetime:
    """An editor's "YYYY-MM-DDTHH:MM" in their zone, as aware UTC; ValidationError if unusable."""
    zone = ZoneInfo(zone_name)
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            {"scheduled_at": admin_gettext("Give a date and time, like 2030-05-01 09:30.")}
        ) from None
    if naive.tzinfo is not None:
        naive = naive.replace(tzinfo=None)
    local = naive.replace(tzinfo=zone)
    # A time skipped by a daylight-saving change does not exist in that zone.
    if local.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValidationError(
            {
                "scheduled_at": f"{naive:%Y-%m-%d %H:%M} does not exist in {zone_name} (the clocks "
                "go forward then); choose another time."
            }
        )
    return local.astimezone(ZoneInfo("UTC"))


def schedule(
    session: Session, editor: Editor, alert: Alert, local_when: str, ip: str | None = None
) -> None:
    """draft → scheduled at a time given in the editor's zone; the past is refused."""
    require(editor, "send")
    when = parse_local(local_when, editor.timezone)
    schedule_at(session, editor, alert, when, ip)


def schedule_at(
    session: Session, editor: Editor | None, alert: Alert, when: datetime, ip: str | None = None
) -> None:
    """draft → scheduled at an aware moment; the past is refused (named in the editor's zone)."""
    if editor is not None:
        require(editor, "send")
    if alert.status not in EDITABLE:
        raise InvalidTransition(
            admin_gettext(
                "This alert cannot be scheduled (%(state)s).",
                state=admin_gettext(alert.status.value),
            )
        )
    if alert.role in PLANNED_ROLES:
        raise InvalidTransition(PLANNED_REFUSAL.format(role=alert.role))
    if alert.role == AlertRole.SERIES_STEP.value:
        raise InvalidTransition(
            admin_gettext(
                "This alert is a step of a series: each reader gets it when the series reaches "
                "them."
            )
        )
    if when <= utcnow() + timedelta(seconds=30):
        zone = editor.timezone if editor is not None else "UTC"
        shown = f"{when.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
        raise ValidationError(
            {
                "scheduled_at": admin_gettext(
                    "%(when)s (%(zone)s) has already passed; choose a later time.",
                    when=shown,
                    zone=zone,
                )
            }
        )
    if not (alert.audience or {}).get("lists"):
        raise ValidationError(
            {"lists": admin_gettext("Choose at least one list before scheduling.")}
        )
    _check_renders(session, alert)
    alert.status = AlertStatus.SCHEDULED
    alert.scheduled_at = when
    audit.record(session, editor, "alert.schedule", f"alert:{alert.id}", ip, at=when.isoformat())


def unschedule(session: Session, editor: Editor, alert: Alert, ip: str | None = None) -> None:
    """scheduled → draft; nothing will be sent until it is scheduled or sent again."""
    require(editor, "send")
    if alert.status != AlertStatus.SCHEDULED:
        raise InvalidTransition(
            admin_gettext(
                "This alert is not scheduled (%(state)s).", state=admin_gettext(alert.status.value)
            )
        )
    alert.status = AlertStatus.DRAFT
    alert.scheduled_at = None
    audit.record(session, editor, "alert.unschedule", f"alert:{alert.id}", ip)


# --- audience --------------------------------------------------------------------------


def audience_query(session: Session, audience: Mapping[str, Any]) -> Select[Any]:
    """Ids of the subscribers an audience reaches: subscribed to one of its lists, with one of
    its tags (if any), in one of its languages (if any), meeting its conditions (if any:
    clarion.alerts.segments), and not suppressed."""
    lists = [int(i) for i in audience.get("lists", [])]
    query = select(Subscriber.id).where(
        exists().where(
            segments.reader(Subscription.subscriber_id),
            Subscription.list_id.in_(lists),
            Subscription.status == SubscriptionStatus.SUBSCRIBED,
        ),
        ~exists().where(Suppression.email == Subscriber.email),
    )
    tags = [int(i) for i in audience.get("tags", [])]
    if tags:
        query = query.where(
            exists().where(
                segments.reader(SubscriberTag.subscriber_id), SubscriberTag.tag_id.in_(tags)
            )
        )
    languages = [str(c) for c in audience.get("languages", [])]
    if languages:
        query = query.where(Subscriber.language.in_(languages))
    conditions = audience.get("conditions")
    if conditions:
        query = query.where(segments.condition(session, conditions))
    petition_id = audience.get("skip_signers_of")
    if petition_id is not None:
        query = query.where(segments.unsigned(int(petition_id)))
    return query


def signed(petition_id: int) -> Any:
    """True for a subscriber with a confirmed signature on the petition, matched by subscriber
    id or by address (segments.signed)."""
    return segments.signed(petition_id)


def skipped_signers(session: Session, audience: Mapping[str, Any]) -> int:
    """How many readers of the audience are left out because they signed its petition."""
    petition_id = audience.get("skip_signers_of")
    if petition_id is None or not audience.get("lists"):
        return 0
    everyone = {k: v for k, v in audience.items() if k != "skip_signers_of"}
    query = audience_query(session, everyone).where(signed(int(petition_id)))
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def version_counts(session: Session, alert: Alert) -> dict[str, int]:
    """How many readers of the audience get each version, the primary first (one GROUP BY)."""
    return versions.reader_counts(language_counts(session, alert.audience or {}), alert)


def language_counts(session: Session, audience: Mapping[str, Any]) -> dict[str | None, int]:
    """How many readers of the audience read in each language (one GROUP BY)."""
    if not audience.get("lists"):
        return {}
    ids = audience_query(session, audience).subquery()
    query = (
        select(Subscriber.language, func.count())
        .join(ids, ids.c.id == Subscriber.id)
        .group_by(Subscriber.language)
    )
    return {code: n for code, n in session.execute(query)}


def audience_count(session: Session, audience: Mapping[str, Any]) -> int:
    """How many subscribers the audience reaches right now."""
    if not audience.get("lists"):
        return 0
    with set_based(session):  # built within: its conditions' form depends on work_mem
        query = select(func.count()).select_from(audience_query(session, audience).subquery())
        return session.scalar(query) or 0
