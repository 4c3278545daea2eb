"""Alerts: per-kind forms, preview, test send, audience count, schedule, duplicate."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo, available_timezones

from flask import (
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from clarion.alerts import campaigns, kinds, personal, petition_pick, segments, uploads, versions
from clarion.audience import lists, tags
from clarion.delivery import testsend
from clarion.errors import InvalidTransition, ValidationError
from clarion.i18n import N_, gettext
from clarion.models import AlertKind, AlertStatus
from webapp.admin import bp, relations
from webapp.admin import segments as segment_pages
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.security import OUTBOX_FRAME_CSP
from webapp.utils import client_ip, int_arg, int_list, optional_int

ZONES = sorted(available_timezones())
# Fields a version never has: the picked petition is the same in every language.
NOT_PER_VERSION = frozenset({"petition"})


def _draft_from_form(kind: str) -> campaigns.Draft:
    form = request.form
    kind_spec = kinds.spec(kind)
    sender = form.get("sender_list_id", "")
    return campaigns.Draft(
        kind=kind,
        subject=form.get("subject", ""),
        name=form.get("name", ""),
        preheader=form.get("preheader", ""),
        fields={f.name: form.get(f.name, "") for f in kind_spec.fields},
        lists=int_list(form.getlist("lists")),
        tags=int_list(form.getlist("tags"), "tags"),
        languages=form.getlist("languages"),
        sender_list_id=optional_int(sender, "sender_list_id"),
        archive_public=form.get("archive_public") == "on",
        layout_mjml=form.get("layout_mjml", ""),
        language=form.get("language", ""),
        translations=_versions_from_form(kind_spec),
        include_signers=form.get("include_signers") == "on",
        conditions=form.get("conditions", "").strip() or None,
    )


def _conditions_text(draft: campaigns.Draft) -> str:
    """The draft's conditions as the editor sees them: as typed, or the saved tree's JSON."""
    if draft.conditions is None or isinstance(draft.conditions, str):
        return draft.conditions or ""
    return json.dumps(draft.conditions, indent=2, ensure_ascii=False)


def _markdown_field(kind: str) -> str | None:
    """The kind's first Markdown field: where the form's image upload goes."""
    return next((f.name for f in kinds.spec(kind).fields if f.type == "markdown"), None)


def _store_markdown_image(field: str = "image") -> str:
    """The uploaded image stored as our media; the Markdown that shows it."""
    upload = request.files.get("md_image")
    settings = current_app.config["CLARION"]
    if upload is None or not upload.filename:
        raise ValidationError({field: gettext("Choose an image file to upload.")})
    return uploads.markdown_image(
        upload.stream,
        upload.filename,
        settings.instance_dir,
        settings.base_url,
        field,
        alt=request.form.get("md_alt", ""),
    )


def _add_uploaded_image(draft: campaigns.Draft) -> None:
    """Without JavaScript, an image chosen in the form is added at the end of the Markdown."""
    target = _markdown_field(draft.kind)
    upload = request.files.get("md_image")
    if target is None or upload is None or not upload.filename:
        return
    text = draft.fields.get(target, "").rstrip()
    draft.fields[target] = f"{text}\n\n{_store_markdown_image(target)}\n".lstrip()


def _versions_from_form(kind_spec: kinds.KindSpec) -> dict[str, dict]:
    """The versions written on the form (anything typed in one adds it; "remove" drops it).

    Their inputs are named "<code>.<field>", as their errors are.
    """
    form = request.form
    found = {}
    for code, _label in current_app.config["CLARION"].languages:
        version = {
            "subject": form.get(f"{code}.subject", ""),
            "preheader": form.get(f"{code}.preheader", ""),
            "fields": {
                f.name: form.get(f"{code}.{f.name}", "")
                for f in kind_spec.fields
                if f.type not in NOT_PER_VERSION
            },
            "unfinished": form.get(f"{code}.unfinished") == "on",
        }
        typed = [version["subject"], version["preheader"], *version["fields"].values()]
        if any(v.strip() for v in typed) and form.get(f"{code}.remove") != "on":
            found[code] = version
    return found


def _form(draft: campaigns.Draft, alert=None, errors: dict | None = None, status: int = 200):
    kind_spec = kinds.spec(draft.kind)
    defaults = {f.name: f.default for f in kind_spec.fields}
    return (
        render_template(
            "admin/alert_form.html",
            draft=draft,
            values={**defaults, **draft.fields} if alert is None else draft.fields,
            alert=alert,
            spec=kind_spec,
            errors=errors or {},
            all_lists=lists.all_lists(db()),
            all_tags=tags.all_tags(db()),
            languages=current_app.config["CLARION"].languages,
            primary=draft.language or versions.default_primary({"languages": draft.languages}),
            neutral=versions.NEUTRAL_TYPES,
            counts=campaigns.version_counts(db(), alert) if alert is not None else {},
            open_versions={key.split(".")[0] for key in errors or {} if "." in key},
            zones=ZONES,
            image_field=_markdown_field(draft.kind),
            personal_fields=", ".join(personal.FIELDS),
            petitions=petition_pick.choices(db()) if draft.kind == AlertKind.PETITION else [],
            not_per_version=NOT_PER_VERSION,
            conditions_text=_conditions_text(draft),
            condition_errors=_condition_errors(errors or {}),
            condition_types=list(segments.TYPES),
            saved_segments=segments.all_segments(db()),
            choices=segment_pages.editor_choices(),
        ),
        status,
    )


def _condition_errors(errors: dict) -> list[tuple[str, str]]:
    """The faults of the conditions, each with the path of its condition."""
    return sorted((k, v) for k, v in errors.items() if k.startswith("audience.conditions"))


@bp.get("/alerts", endpoint="alerts")
@requires("view")
def alerts_page():
    """Every alert, newest first, with its state."""
    status = request.args.get("status", "")
    found = campaigns.page(db(), status, after=int_arg("after"), before=int_arg("before"))
    return render_template(
        "admin/alerts.html", page=found, status=status, kinds=kinds.KINDS, states=AlertStatus
    )


@bp.get("/alerts/new")
@requires("compose")
def alert_new():
    """An empty form for the chosen kind; `?petition=<id>` starts a petition alert from it."""
    kind = kinds.spec(request.args.get("kind", AlertKind.NEWSLETTER.value)).kind
    draft = campaigns.Draft(kind=kind.value)
    petition_id = optional_int(request.args.get("petition", ""), "petition")
    if kind == AlertKind.PETITION and petition_id is not None:
        settings = current_app.config["CLARION"]
        try:
            draft.fields = petition_pick.fill(
                db(), {"petition_id": str(petition_id)}, settings.base_url
            )
        except ValidationError as exc:
            return _form(draft, None, exc.errors, 404)
        draft.subject = draft.fields.get("petition_title", "")
    return _form(draft)


@bp.post("/alerts/new")
@requires("compose")
def alert_create():
    """Save a new draft; a rejected form keeps everything typed."""
    kind = kinds.spec(request.form.get("kind", "")).kind.value
    draft = _draft_from_form(kind)
    try:
        _add_uploaded_image(draft)
        alert = campaigns.create_draft(db(), current_editor(), draft, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _form(draft, None, exc.errors, 422)
    flash(gettext("Draft saved."))
    return _after_save(alert.id)


def _after_save(alert_id: int):
    if request.form.get("then") == "preview":
        return redirect(url_for("admin.alert_preview", alert_id=alert_id))
    return redirect(url_for("admin.alert", alert_id=alert_id))


def _broken(found) -> list[tuple[str, str]]:
    """What the alert's conditions name that no longer exists (it cannot be sent until
    fixed), each with the path of its condition; only while it can still change."""
    conditions = (found.audience or {}).get("conditions")
    if not conditions or found.status not in campaigns.EDITABLE:
        return []
    try:
        segments.check(db(), conditions, path="audience.conditions")
    except ValidationError as exc:
        return sorted(exc.errors.items())
    return []


def alert_page(
    found,
    errors: dict | None = None,
    plan_values: dict | None = None,
    status=200,
    follow_up: dict | None = None,
):
    """The alert's page; a rejected plan or follow-up keeps what was typed."""
    zone = ZoneInfo(current_editor().timezone)
    return render_template(
        "admin/alert.html",
        alert=found,
        spec=kinds.spec(found.kind),
        help=gettext(campaigns.STATE_HELP[found.status]),
        audience_count=campaigns.audience_count(db(), found.audience or {}),
        skipped_signers=campaigns.skipped_signers(db(), found.audience or {}),
        broken_conditions=_broken(found),
        list_names={ml.id: ml.name for ml in lists.all_lists(db())},
        tag_names={t.id: t.name for t in tags.all_tags(db())},
        scheduled_local=found.scheduled_at.astimezone(zone) if found.scheduled_at else None,
        errors=errors or {},
        related=relations.of(db(), found, zone, plan_values),
        primary=versions.primary_language(found),
        version_counts=campaigns.version_counts(db(), found),
        language_names=dict(current_app.config["CLARION"].languages),
        follow=follow_up or relations.follow_ups(db(), found),
        stay=relations.stay(db(), found),
    ), status


@bp.get("/alerts/<int:alert_id>")
@requires("view")
def alert(alert_id: int):
    """An alert's state, audience and actions."""
    return alert_page(campaigns.get_alert(db(), alert_id))


@bp.get("/alerts/<int:alert_id>/edit")
@requires("compose")
def alert_edit(alert_id: int):
    """The alert's form, filled in."""
    found = campaigns.get_alert(db(), alert_id)
    if found.status not in campaigns.EDITABLE:
        flash(
            gettext(
                "This alert can no longer be edited (%(state)s); duplicate it instead.",
                state=gettext(found.status.value),
            ),
            "error",
        )
        return redirect(url_for("admin.alert", alert_id=alert_id))
    return _form(campaigns.Draft.from_alert(found), found)


@bp.post("/alerts/<int:alert_id>/edit")
@requires("compose")
def alert_update(alert_id: int):
    """Save changes to a draft or scheduled alert."""
    found = campaigns.get_alert(db(), alert_id)
    draft = _draft_from_form(found.kind.value)
    try:
        _add_uploaded_image(draft)
        campaigns.update_draft(db(), current_editor(), found, draft, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _form(draft, found, exc.errors, 422)
    except InvalidTransition as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.alert", alert_id=alert_id))
    flash(gettext("Saved."))
    return _after_save(alert_id)


@bp.get("/alerts/<int:alert_id>/preview")
@requires("view")
def alert_preview(alert_id: int):
    """Desktop and mobile widths and plain text, with neutral recipient values."""
    found = campaigns.get_alert(db(), alert_id)
    lang = _version_asked(found)
    try:
        mail, errors = campaigns.render_preview(db(), found, lang), {}
    except ValidationError as exc:
        mail, errors = None, exc.errors
    return render_template(
        "admin/alert_preview.html",
        alert=found,
        mail=mail,
        errors=errors,
        lang=lang,
        primary=versions.primary_language(found),
        language_names=dict(current_app.config["CLARION"].languages),
    )


def _version_asked(alert) -> str | None:
    """The version named by ?lang= if the alert has one in that language, else None (primary)."""
    code = request.args.get("lang", "")
    return code if code in (alert.translations or {}) else None


@bp.get("/alerts/<int:alert_id>/preview.html")
@requires("view")
def alert_preview_html(alert_id: int):
    """The HTML alone, for the sandboxed frames; no script can run in it."""
    found = campaigns.get_alert(db(), alert_id)
    try:
        html = campaigns.render_preview(db(), found, _version_asked(found)).html
    except ValidationError as exc:
        message = gettext("This alert does not render: %(error)s", error=str(exc))
        html = str(Markup("<p>{}</p>").format(message))
    response = make_response(html)
    response.headers["Content-Security-Policy"] = OUTBOX_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _act(alert_id: int, action, done: str, **variables: object):
    found = campaigns.get_alert(db(), alert_id)
    try:
        result = action(found)
        db().commit()
    except (ValidationError, InvalidTransition) as exc:
        db().rollback()
        message = " ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc)
        flash(message, "error")
        return redirect(url_for("admin.alert", alert_id=alert_id)), None
    flash(gettext(done, **variables))
    return redirect(url_for("admin.alert", alert_id=alert_id)), result


@bp.post("/alerts/<int:alert_id>/test")
@requires("compose")
def alert_test(alert_id: int):
    """Send a [Test] copy to the given addresses (no delivery rows, not in the statistics)."""
    raw = request.form.get("test_to", "")
    lang = request.form.get("language") or None
    return _act(
        alert_id,
        lambda a: testsend.send_test(db(), current_editor(), a, raw, client_ip(), lang),
        N_("Test sent to %(addresses)s."),
        addresses=raw,
    )[0]


@bp.post("/alerts/<int:alert_id>/schedule")
@requires("send")
def alert_schedule(alert_id: int):
    """Schedule for a time in the editor's zone."""
    when = request.form.get("scheduled_at", "")
    return _act(
        alert_id,
        lambda a: campaigns.schedule(db(), current_editor(), a, when, client_ip()),
        N_("Scheduled for %(moment)s (%(zone)s)."),
        moment=when.replace("T", " "),
        zone=current_editor().timezone,
    )[0]


@bp.post("/alerts/<int:alert_id>/unschedule")
@requires("send")
def alert_unschedule(alert_id: int):
    """Back to draft."""
    return _act(
        alert_id,
        lambda a: campaigns.unschedule(db(), current_editor(), a, client_ip()),
        N_("Unscheduled: the alert is a draft again."),
    )[0]


@bp.post("/alerts/<int:alert_id>/duplicate")
@requires("compose")
def alert_duplicate(alert_id: int):
    """A new draft copied from this alert."""
    found = campaigns.get_alert(db(), alert_id)
    copy = campaigns.duplicate(db(), current_editor(), found, client_ip())
    db().commit()
    flash(gettext("This is a copy; edit it and save."))
    return redirect(url_for("admin.alert_edit", alert_id=copy.id))


@bp.post("/alerts/<int:alert_id>/delete")
@requires("compose")
def alert_delete(alert_id: int):
    """Delete a draft."""
    found = campaigns.get_alert(db(), alert_id)
    try:
        campaigns.delete_draft(db(), current_editor(), found, client_ip())
        db().commit()
    except InvalidTransition as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.alert", alert_id=alert_id))
    flash(gettext("Draft deleted."))
    return redirect(url_for("admin.alerts"))


@bp.get("/audience-count")
@requires("view")
def audience_count():
    """How many subscribers an audience reaches, for the live count in the form; with a
    petition picked (and its signers not included), how many are left out as signers."""
    audience = {
        "lists": int_list(request.args.getlist("lists")),
        "tags": int_list(request.args.getlist("tags"), "tags"),
        "languages": request.args.getlist("languages"),
    }
    petition_id = optional_int(request.args.get("petition_id", ""), "petition_id")
    if petition_id is not None and request.args.get("include_signers") != "on":
        audience["skip_signers_of"] = petition_id
    text = request.args.get("conditions", "").strip()
    if text:
        try:
            audience["conditions"] = segments.parse(text, "audience.conditions")
            segments.check(db(), audience["conditions"], path="audience.conditions")
        except ValidationError as exc:
            return jsonify({"count": None, "skipped": None, "errors": exc.errors})
    return jsonify(
        {
            "count": campaigns.audience_count(db(), audience),
            "skipped": campaigns.skipped_signers(db(), audience),
            "languages": _by_language(audience),
        }
    )


def _by_language(audience: dict) -> list[list]:
    """How many of the audience read in each language, as [code, name, count], the most first."""
    names = dict(current_app.config["CLARION"].languages)
    found = campaigns.language_counts(db(), audience)
    ordered = sorted(found.items(), key=lambda item: (-item[1], item[0] or ""))
    return [[code, names.get(code, code), n] for code, n in ordered]


@bp.post("/media/markdown-image")
@requires("compose")
def markdown_image_upload():
    """Store an image uploaded from the editor; its Markdown, for our script to insert."""
    try:
        markdown = _store_markdown_image()
    except ValidationError as exc:
        return jsonify({"error": "invalid", "fields": exc.errors}), 422
    return jsonify({"markdown": markdown})
