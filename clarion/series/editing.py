"""Series as editors manage them: trigger, goal, steps, pause and resume.

A step's alert is an ordinary draft (role series_step), edited with the alert form and
translated like any alert, until the step is made ready: then it is frozen, like a welcome
mail, and stays `sending` while the step uses it. Readers waiting for a step that is not ready
wait. A ready step is changed by replacing it with an edited copy (a new draft); the old alert
finishes once its queued mails are out. Circular triggers — a series whose steps' clicks would
enter readers into itself, directly or through other series — are refused at save.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.alerts import kinds, segments
from clarion.db import utcnow
from clarion.delivery import sending
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
    Petition,
    Series,
    SeriesStatus,
    SeriesStep,
    SeriesTrigger,
)
from clarion.series import entering

MAX_DELAY_DAYS = 365


@dataclass
class SeriesValues:
    """What an editor submits for a series: a trigger and its target, and a goal as JSON."""

    name: str
    list_id: int | None
    trigger: str
    petition_id: int | None = None
    alert_id: int | None = None
    goal: Any = None  # a condition tree, its JSON text, or None/"" for none


@dataclass
class StepValues:
    """A step: a new draft of `kind`, or an existing plain draft `alert_id`; its delay after
    the previous step and an optional condition tree (or its JSON text)."""

    delay_hours: float = 0
    conditions: Any = None
    kind: str = "newsletter"
    alert_id: int | None = None


# --- reading ---------------------------------------------------------------------------------


def get(session: Session, series_id: int) -> Series:
    """The series, or NotFound."""
    series = session.get(Series, series_id)
    if series is None:
        raise NotFound(admin_gettext("There is no such series."))
    return series


def all_series(session: Session) -> list[Series]:
    """Every series by name."""
    return list(session.scalars(select(Series).order_by(Series.name)))


def steps_of(session: Session, series_id: int) -> list[SeriesStep]:
    """A series' steps in order."""
    return list(
        session.scalars(
            select(SeriesStep)
            .where(SeriesStep.series_id == series_id)
            .order_by(SeriesStep.position)
        )
    )


def _step(session: Session, series: Series, step_id: int) -> SeriesStep:
    step = session.get(SeriesStep, step_id)
    if step is None or step.series_id != series.id:
        raise NotFound(admin_gettext("There is no such step."))
    return step


# --- checking --------------------------------------------------------------------------------


def _tree(session: Session, raw: Any, path: str) -> dict[str, Any] | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    tree = segments.parse(raw, path)
    segments.check(session, tree, path=path)
    return tree


def _clean(session: Session, values: SeriesValues, own_id: int | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = " ".join((values.name or "").split())
    if not name or len(name) > 200:
        errors["name"] = admin_gettext("Give the series a name (at most 200 characters).")
    elif session.scalar(select(Series.id).where(Series.name == name, Series.id != (own_id or 0))):
        errors["name"] = admin_gettext("Another series is called %(name)s.", name=name)
    if values.list_id is None or session.get(MailingList, values.list_id) is None:
        errors["list_id"] = admin_gettext("Choose the list whose readers the series writes to.")
    try:
        trigger = SeriesTrigger(values.trigger)
    except ValueError:
        trigger = None
        errors["trigger"] = admin_gettext(
            "Choose a trigger: joined the list, signed a petition or clicked an alert's link."
        )
    petition_id = values.petition_id if trigger == SeriesTrigger.SIGNED else None
    alert_id = values.alert_id if trigger == SeriesTrigger.CLICKED else None
    if trigger == SeriesTrigger.SIGNED and (
        petition_id is None or session.get(Petition, petition_id) is None
    ):
        errors["petition_id"] = admin_gettext("Choose the petition whose signers enter.")
    if trigger == SeriesTrigger.CLICKED and (
        alert_id is None or session.get(Alert, alert_id) is None
    ):
        errors["alert_id"] = admin_gettext("Choose the alert whose links let readers enter.")
    goal = None
    try:
        goal = _tree(session, values.goal, "goal")
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return {"name": name, "list_id": values.list_id, "trigger": trigger,
            "petition_id": petition_id, "alert_id": alert_id, "goal": goal}  # fmt: skip


def _step_alerts(session: Session, series_id: int) -> list[int]:
    return list(
        session.scalars(select(SeriesStep.alert_id).where(SeriesStep.series_id == series_id))
    )


def check_circular(
    session: Session, series_id: int | None, trigger_alert: int | None, step_alerts: list[int]
) -> None:
    """Refuse a series whose own steps would trigger it: a step's clicks entering readers into
    this series, directly or through a chain of other click-triggered series."""
    if trigger_alert is None:
        return
    if trigger_alert in step_alerts:
        raise ValidationError({"alert_id": _circular(trigger_alert)})
    seen, frontier = set(), list(step_alerts)
    while frontier:
        triggered = session.execute(
            select(Series.id, Series.alert_id).where(
                Series.trigger == SeriesTrigger.CLICKED, Series.alert_id.in_(frontier)
            )
        ).all()
        frontier = []
        for other_id, _alert in triggered:
            if other_id == series_id or other_id in seen:
                continue
            seen.add(other_id)
            more = _step_alerts(session, other_id)
            if trigger_alert in more:
                raise ValidationError({"alert_id": _circular(trigger_alert)})
            frontier += more


def _circular(alert_id: int) -> str:
    return admin_gettext(
        "Alert %(id)s is sent by this series (or by a series it triggers): its clicks would "
        "enter readers into this series again. Choose another alert.",
        id=alert_id,
    )


# --- series ----------------------------------------------------------------------------------


def create(session: Session, editor: Editor, values: SeriesValues, ip: str | None = None) -> Series:
    """A new series, paused until its steps are ready and an editor resumes it."""
    require(editor, "compose")
    cleaned = _clean(session, values, None)
    series = Series(**cleaned, status=SeriesStatus.PAUSED, created_by_id=editor.id)
    series.seen_click_id = entering.last_click_id(session)
    session.add(series)
    session.flush()
    audit.record(session, editor, "series.create", f"series:{series.id}", ip, name=series.name)
    return series


def update(
    session: Session, editor: Editor, series: Series, values: SeriesValues, ip: str | None = None
) -> None:
    """Change name, list, trigger or goal; readers already in stay in."""
    require(editor, "compose")
    cleaned = _clean(session, values, series.id)
    check_circular(session, series.id, cleaned["alert_id"], _step_alerts(session, series.id))
    if cleaned["alert_id"] != series.alert_id:
        series.seen_click_id = entering.last_click_id(session)  # earlier clicks do not count
    for key, value in cleaned.items():
        setattr(series, key, value)
    audit.record(session, editor, "series.update", f"series:{series.id}", ip, name=series.name)


def pause(session: Session, editor: Editor, series: Series, ip: str | None = None) -> None:
    """Stop moving readers on; they wait where they are (mails already queued still go)."""
    require(editor, "send")
    series.status = SeriesStatus.PAUSED
    audit.record(session, editor, "series.pause", f"series:{series.id}", ip)


def resume(session: Session, editor: Editor, series: Series, ip: str | None = None) -> None:
    """Make every draft step ready and let the beat move readers on again."""
    require(editor, "send")
    steps = steps_of(session, series.id)
    if not steps:
        raise ValidationError({"steps": admin_gettext("Add a step before starting the series.")})
    errors: dict[str, str] = {}
    for number, step in enumerate(steps, 1):
        alert = session.get(Alert, step.alert_id)
        if alert.status == AlertStatus.DRAFT:
            try:
                _freeze(session, series, alert)
            except ValidationError as exc:
                errors[f"steps.{number}"] = _not_ready(number, exc)
    if errors:
        raise ValidationError(errors)
    series.status = SeriesStatus.ACTIVE
    audit.record(session, editor, "series.resume", f"series:{series.id}", ip)


def _not_ready(number: int, exc: ValidationError) -> str:
    problems = "; ".join(str(v) for v in exc.errors.values())
    return admin_gettext("Step %(number)s cannot be sent yet: %(problems)s", number=number,
                         problems=problems)  # fmt: skip


# --- steps -----------------------------------------------------------------------------------


def _delay(hours: Any) -> int:
    try:
        value = float(hours)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value <= MAX_DELAY_DAYS * 24:
        raise ValidationError(
            {"delay_hours": admin_gettext(
                "Give the delay in hours, from 0 to %(max)s.", max=MAX_DELAY_DAYS * 24)}
        )  # fmt: skip
    return round(value * 3600)


def _new_alert(session: Session, editor: Editor, series: Series, kind: str, number: int) -> Alert:
    try:
        spec = kinds.spec(kind)
    except ValidationError:
        raise ValidationError({"kind": admin_gettext("Choose a kind of alert.")}) from None
    alert = Alert(
        kind=AlertKind(spec.kind),
        name=f"{series.name} · {number}"[:200],
        audience={"lists": [series.list_id], "tags": [], "languages": []},
        sender_list_id=series.list_id,
        status=AlertStatus.DRAFT,
        role=AlertRole.SERIES_STEP.value,
        created_by_id=editor.id,
    )
    session.add(alert)
    session.flush()
    return alert


def _adopt(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.status != AlertStatus.DRAFT or alert.role != AlertRole.NONE:
        raise ValidationError(
            {"alert_id": admin_gettext("Choose a plain draft: it becomes this step's mail.")}
        )
    alert.role = AlertRole.SERIES_STEP.value
    return alert


def add_step(
    session: Session, editor: Editor, series: Series, values: StepValues, ip: str | None = None
) -> SeriesStep:
    """A new last step: a new draft alert (edit it with the alert form) or an adopted draft."""
    require(editor, "compose")
    delay = _delay(values.delay_hours)
    conditions = _tree(session, values.conditions, "conditions")
    if values.alert_id is not None:
        check_circular(
            session,
            series.id,
            series.alert_id,
            [*_step_alerts(session, series.id), values.alert_id],
        )
    position = (
        session.scalar(
            select(func.max(SeriesStep.position)).where(SeriesStep.series_id == series.id)
        )
        or 0
    ) + 1
    if values.alert_id is not None:
        alert = _adopt(session, values.alert_id)
    else:
        alert = _new_alert(session, editor, series, values.kind, position)
    step = SeriesStep(series_id=series.id, position=position, alert_id=alert.id,
                      delay_seconds=delay, conditions=conditions)  # fmt: skip
    session.add(step)
    session.flush()
    audit.record(session, editor, "series.step", f"series:{series.id}", ip, alert=alert.id)
    return step


def update_step(
    session: Session,
    editor: Editor,
    series: Series,
    step_id: int,
    values: StepValues,
    ip: str | None = None,
) -> SeriesStep:
    """Change a step's delay and condition; readers already waiting for it get the new ones."""
    require(editor, "compose")
    step = _step(session, series, step_id)
    step.delay_seconds = _delay(values.delay_hours)
    step.conditions = _tree(session, values.conditions, "conditions")
    audit.record(session, editor, "series.step", f"series:{series.id}", ip, alert=step.alert_id)
    return step


def _freeze(session: Session, series: Series, alert: Alert) -> None:
    if not alert.subject.strip():
        raise ValidationError({"subject": admin_gettext("it has no subject")})
    kinds.validate_fields(alert.kind, alert.fields or {})
    audience = {"lists": [series.list_id], "tags": [], "languages": []}
    alert.audience, alert.sender_list_id = audience, series.list_id
    sending.freeze_alert(session, alert, audience)
    now = utcnow()
    sending.transition(session, alert, "start", started_at=now, dispatched_at=now, recipients=0)


def ready_step(
    session: Session, editor: Editor, series: Series, step_id: int, ip: str | None = None
) -> None:
    """Freeze a draft step's alert: readers reaching the step get it from the next tick."""
    require(editor, "send")
    step = _step(session, series, step_id)
    alert = session.get(Alert, step.alert_id)
    if alert.status != AlertStatus.DRAFT:
        raise InvalidTransition(admin_gettext("This step is ready already."))
    try:
        _freeze(session, series, alert)
    except ValidationError as exc:
        raise ValidationError({"step": _not_ready(step.position, exc)}) from None
    audit.record(session, editor, "series.step", f"series:{series.id}", ip, alert=alert.id)


def replace_step(
    session: Session, editor: Editor, series: Series, step_id: int, ip: str | None = None
) -> Alert:
    """Give a ready step a new draft, a copy of its alert to edit; readers reaching the step
    wait until the new draft is made ready. The old alert finishes once its mails are out
    (the delivery sweep sees it is no longer in use)."""
    require(editor, "compose")
    step = _step(session, series, step_id)
    old = session.get(Alert, step.alert_id)
    if old.status == AlertStatus.DRAFT:
        raise InvalidTransition(admin_gettext("This step is a draft: edit it as it is."))
    copy = Alert(
        kind=old.kind, name=old.name, subject=old.subject, preheader=old.preheader,
        fields=dict(old.fields or {}), audience=dict(old.audience or {}),
        sender_list_id=old.sender_list_id, layout_mjml=old.layout_mjml, language=old.language,
        translations={k: dict(v) for k, v in (old.translations or {}).items()},
        status=AlertStatus.DRAFT, role=AlertRole.SERIES_STEP.value, created_by_id=editor.id,
    )  # fmt: skip
    session.add(copy)
    session.flush()
    step.alert_id = copy.id
    audit.record(session, editor, "series.step", f"series:{series.id}", ip, alert=copy.id)
    return copy
