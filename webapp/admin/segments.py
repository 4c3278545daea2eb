"""Saved segments: the list (in words, with counts, users and faults), create, edit, delete,
and the export of a segment's readers."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from clarion.alerts import petition_pick, segment_words, segments
from clarion.audience import exports, lists, tags
from clarion.errors import ValidationError
from clarion.i18n import gettext
from tasks.imports import run_export
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


def editor_choices(with_segments: bool = True) -> dict[str, Any]:
    """What the point-and-click condition editor offers in its selects, as [id, name] pairs."""
    alerts = segments.alert_choices(db())
    return {
        "lists": [[ml.id, ml.name] for ml in lists.all_lists(db())],
        "tags": [[t.id, t.name] for t in tags.all_tags(db())],
        "petitions": [[pid, title] for pid, title in petition_pick.choices(db())],
        "alerts": [[aid, name] for aid, name, _day in alerts],
        "hashtag_days": [[aid, name] for aid, name, day in alerts if day],
        "languages": [list(pair) for pair in current_app.config["CLARION"].languages],
        "segments": [[s.id, s.name] for s in segments.all_segments(db())] if with_segments else [],
    }


def _broken(segment) -> list[tuple[str, str]]:
    """What the segment names that no longer exists, each with the path of its condition."""
    try:
        segments.check(db(), segment.conditions, saved=True)
    except ValidationError as exc:
        return sorted(exc.errors.items())
    return []


def count_url(tree: Any) -> str:
    """The live count of readers a tree reaches on any list (for the segments' script)."""
    every_list = [ml.id for ml in lists.all_lists(db())]
    return url_for("admin.audience_count", lists=every_list, conditions=json.dumps(tree))


@bp.get("/segments", endpoint="segments")
@requires("view")
def segments_page():
    """Every saved segment: its conditions in words, its count, the alerts that use it, and
    what it names that no longer exists."""
    users = segments.uses(db())
    rows = [
        {
            "segment": seg,
            "words": segment_words.describe(db(), seg.conditions),
            "broken": _broken(seg),
            "users": users.get(seg.id, []),
            "count_url": count_url(seg.conditions),
        }
        for seg in segments.all_segments(db())
    ]
    return render_template("admin/segments.html", rows=rows)


def _form(segment=None, name: str = "", text: str = "", errors: dict | None = None, status=200):
    errors = errors or {}
    return (
        render_template(
            "admin/segment_form.html",
            segment=segment,
            name=name,
            conditions_text=text,
            errors=errors,
            condition_errors=sorted((k, v) for k, v in errors.items() if k != "name"),
            choices=editor_choices(with_segments=False),
            count_base=url_for(
                "admin.audience_count", lists=[ml.id for ml in lists.all_lists(db())]
            ),
            users=segments.used_by(db(), segment.id) if segment is not None else [],
            words=segment_words.describe(db(), segment.conditions) if segment else "",
        ),
        status,
    )


@bp.get("/segments/new")
@requires("compose")
def segment_new():
    """An empty segment form."""
    return _form()


@bp.post("/segments/new")
@requires("compose")
def segment_create():
    """Save a new segment; a rejected form keeps what was typed and names each fault."""
    name, text = request.form.get("name", ""), request.form.get("conditions", "")
    try:
        segment = segments.create(db(), current_editor(), name, text)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _form(None, name, text, exc.errors, 422)
    flash(gettext("Segment %(name)s saved.", name=segment.name))
    return redirect(url_for("admin.segments"))


@bp.get("/segments/<int:segment_id>")
@requires("view")
def segment(segment_id: int):
    """The segment's form (read-only without the right to change it) and who uses it."""
    found = segments.get(db(), segment_id)
    text = json.dumps(found.conditions, indent=2, ensure_ascii=False)
    return _form(found, found.name, text, dict(_broken(found)))


@bp.post("/segments/<int:segment_id>")
@requires("compose")
def segment_update(segment_id: int):
    """Rename the segment and replace its conditions."""
    found = segments.get(db(), segment_id)
    name, text = request.form.get("name", ""), request.form.get("conditions", "")
    try:
        segments.update(db(), current_editor(), found.id, name, text)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _form(segments.get(db(), segment_id), name, text, exc.errors, 422)
    flash(gettext("Segment %(name)s saved.", name=name.strip()))
    return redirect(url_for("admin.segments"))


@bp.post("/segments/<int:segment_id>/delete")
@requires("compose")
def segment_delete(segment_id: int):
    """Delete the segment, unless an unsent alert uses it (the message names them)."""
    try:
        segments.delete(db(), current_editor(), segment_id)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        flash(" ".join(exc.errors.values()), "error")
        return redirect(url_for("admin.segment", segment_id=segment_id))
    flash(gettext("Segment deleted."))
    return redirect(url_for("admin.segments"))


@bp.post("/segments/<int:segment_id>/export")
@requires("export")
def segment_export(segment_id: int):
    """Export the readers who meet the segment's conditions as CSV (audited)."""
    found = segments.get(db(), segment_id)
    try:
        job = exports.start_segment_export(db(), current_editor(), found, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        flash(" ".join(exc.errors.values()), "error")
        return redirect(url_for("admin.segment", segment_id=segment_id))
    run_export.delay(job.id)
    return redirect(url_for("admin.job", uid=job.uid))
