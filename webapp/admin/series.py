"""Series (automations): list and create, a series' trigger, goal and steps, pause and resume."""

from __future__ import annotations

import json

from flask import flash, redirect, render_template, request, url_for

from clarion.actions import petitions
from clarion.audience import lists
from clarion.errors import InvalidTransition, ValidationError
from clarion.i18n import gettext
from clarion.models import Alert, AlertStatus, Series
from clarion.series import editing, stats
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip, optional_int

TRIGGERS = ("joined", "signed", "clicked")


def _values() -> editing.SeriesValues:
    form = request.form
    return editing.SeriesValues(
        name=form.get("name", ""),
        list_id=optional_int(form.get("list_id", ""), "list_id"),
        trigger=form.get("trigger", ""),
        petition_id=optional_int(form.get("petition_id", ""), "petition_id"),
        alert_id=optional_int(form.get("alert_id", ""), "alert_id"),
        goal=form.get("goal", ""),
    )


def _form_of(series: Series | None) -> dict:
    if series is None:
        return {"trigger": "joined", "goal": ""}
    return {
        "name": series.name,
        "list_id": series.list_id,
        "trigger": series.trigger.value,
        "petition_id": series.petition_id,
        "alert_id": series.alert_id,
        "goal": json.dumps(series.goal, ensure_ascii=False) if series.goal else "",
    }


def _choices() -> dict:
    sent = [a for a in db().query(Alert).order_by(Alert.id.desc()).limit(200)
            if a.status != AlertStatus.DRAFT]  # fmt: skip
    return {
        "all_lists": lists.all_lists(db()),
        "all_petitions": petitions.all_petitions(db()),
        "trigger_alerts": sent,
    }


@bp.get("/series", endpoint="series_index")
@requires("view")
def series_index(values: dict | None = None, errors: dict | None = None, status: int = 200):
    """Every series with its state and readers, and a form for a new one."""
    rows = [(s, stats.entry_counts(db(), s.id)) for s in editing.all_series(db())]
    page = render_template(
        "admin/series_index.html",
        rows=rows,
        values=values or _form_of(None),
        errors=errors or {},
        **_choices(),
    )
    return page, status


@bp.post("/series")
@requires("compose")
def series_create():
    """Create a series (paused until its steps are ready)."""
    values = _values()
    try:
        series = editing.create(db(), current_editor(), values, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return series_index(dict(request.form), exc.errors, 422)
    flash(gettext("Series %(name)s created. Add its steps, then start it.", name=series.name))
    return redirect(url_for("admin.series_page", series_id=series.id))


def _page(
    series: Series,
    values: dict | None = None,
    errors: dict | None = None,
    status=200,
    typed_step: dict | None = None,
):
    """The series page; after a refusal, `typed_step` is the step form as it was sent (with
    "step_id" for a step's own form, None for the new step's), shown again as typed."""
    steps = editing.steps_of(db(), series.id)
    return (
        render_template(
            "admin/series.html",
            series=series,
            values=values or _form_of(series),
            errors=errors or {},
            figures=stats.step_stats(db(), steps),
            counts=stats.entry_counts(db(), series.id),
            typed_step=typed_step or {},
            plain_drafts=db()
            .query(Alert)
            .filter(Alert.status == AlertStatus.DRAFT, Alert.role == "")
            .order_by(Alert.id.desc())
            .limit(100)
            .all(),
            **_choices(),
        ),
        status,
    )


@bp.get("/series/<int:series_id>")
@requires("view")
def series_page(series_id: int):
    """A series: its settings, steps with their figures, readers per state."""
    return _page(editing.get(db(), series_id))


@bp.post("/series/<int:series_id>")
@requires("compose")
def series_update(series_id: int):
    """Save a series' name, list, trigger and goal."""
    series = editing.get(db(), series_id)
    try:
        editing.update(db(), current_editor(), series, _values(), client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(editing.get(db(), series_id), dict(request.form), exc.errors, 422)
    flash(gettext("Saved."))
    return redirect(url_for("admin.series_page", series_id=series_id))


def _step_values() -> editing.StepValues:
    form = request.form
    return editing.StepValues(
        delay_hours=form.get("delay_hours", "0") or "0",
        conditions=form.get("conditions", ""),
        kind=form.get("kind", "newsletter"),
        alert_id=optional_int(form.get("adopt_alert_id", ""), "adopt_alert_id"),
    )


@bp.post("/series/<int:series_id>/steps")
@requires("compose")
def series_step_add(series_id: int):
    """Add a last step: a new draft to write with the alert form, or a chosen draft."""
    series = editing.get(db(), series_id)
    try:
        step = editing.add_step(db(), current_editor(), series, _step_values(), client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        errors = {f"step_{k}": v for k, v in exc.errors.items()}
        typed = {**request.form, "step_id": None}
        return _page(editing.get(db(), series_id), None, errors, 422, typed)
    flash(gettext("Step added: write its mail, then make it ready."))
    return redirect(url_for("admin.alert_edit", alert_id=step.alert_id))


@bp.post("/series/<int:series_id>/steps/<int:step_id>")
@requires("compose")
def series_step_update(series_id: int, step_id: int):
    """Change a step's delay and condition."""
    series = editing.get(db(), series_id)
    try:
        editing.update_step(db(), current_editor(), series, step_id, _step_values(), client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        errors = {f"step{step_id}_{k}": v for k, v in exc.errors.items()}
        typed = {**request.form, "step_id": step_id}
        return _page(editing.get(db(), series_id), None, errors, 422, typed)
    flash(gettext("Saved."))
    return redirect(url_for("admin.series_page", series_id=series_id))


def _act(series_id: int, action, message: str, *args):
    series = editing.get(db(), series_id)
    try:
        action(db(), current_editor(), series, *args, client_ip())
        db().commit()
    except (ValidationError, InvalidTransition) as exc:
        db().rollback()
        errors = exc.errors if isinstance(exc, ValidationError) else {"series": str(exc)}
        return _page(editing.get(db(), series_id), None, errors, 422)
    flash(message)
    return redirect(url_for("admin.series_page", series_id=series_id))


@bp.post("/series/<int:series_id>/steps/<int:step_id>/ready")
@requires("send")
def series_step_ready(series_id: int, step_id: int):
    """Freeze a draft step: readers reaching it get it from the next tick."""
    return _act(series_id, editing.ready_step, gettext("The step is ready."), step_id)


@bp.post("/series/<int:series_id>/steps/<int:step_id>/replace")
@requires("compose")
def series_step_replace(series_id: int, step_id: int):
    """Give a ready step a draft copy to edit."""
    return _act(
        series_id,
        editing.replace_step,
        gettext("The step has a new draft: edit it, then make it ready."),
        step_id,
    )


@bp.post("/series/<int:series_id>/pause")
@requires("send")
def series_pause(series_id: int):
    """Pause: readers wait where they are."""
    return _act(series_id, editing.pause, gettext("Series paused: its readers wait."))


@bp.post("/series/<int:series_id>/resume")
@requires("send")
def series_resume(series_id: int):
    """Start or resume: draft steps are made ready."""
    return _act(series_id, editing.resume, gettext("Series started."))
