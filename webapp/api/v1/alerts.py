"""/api/v1/alerts: drafts from the same JSON as `clarion alerts create`, preview, schedule,
send, pause, resume, cancel, progress and stats — the admin's and the CLI's functions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import request

from clarion.actions import stats
from clarion.alerts import campaigns
from clarion.delivery import dispatch, sending
from clarion.models import Alert
from webapp.api.v1 import schemas as s
from webapp.api.v1.core import Reply, dump, if_match, ip, operation, token_use
from webapp.extensions import db

TAG = "alerts"
SEND_STATES = {
    "send": sending.start,
    "pause": sending.pause,
    "resume": sending.resume,
    "cancel": sending.cancel,
}
DISPATCHES = {"send", "resume"}


def _alert(alert: Alert) -> dict:
    fields = (
        "id",
        "name",
        "subject",
        "preheader",
        "status_reason",
        "sender_list_id",
        "archive_public",
        "scheduled_at",
        "started_at",
        "finished_at",
        "created_at",
    )
    return dump(
        s.AlertOut,
        {
            **{k: getattr(alert, k) for k in fields},
            "kind": alert.kind.value,
            "status": alert.status.value,
            "fields": dict(alert.fields or {}),
            "audience": dict(alert.audience or {}),
        },
    )


def _raw_json() -> Any:
    # The loader reads the request as the CLI reads the file: every field it knows, by name.
    return request.get_json()


def _current_json(alert: Alert) -> dict[str, Any]:
    """The saved alert in the loader's JSON: every field of the Draft (new ones included, such
    as per-language translations), the audience's under "audience"."""
    draft = asdict(campaigns.Draft.from_alert(alert))
    keys = ("lists", "tags", "languages", "include_signers", "conditions")
    audience = {key: draft.pop(key) for key in keys}
    return {**draft, "audience": audience}


@operation(
    "/alerts",
    "GET",
    scope="read",
    tag=TAG,
    query=s.AlertQuery,
    response=s.AlertPage,
    summary="Alerts newest first, by keyset pages, optionally in one state",
)
def alerts_index(query: dict) -> Reply:
    """A page of alerts."""
    page = campaigns.page(
        db(), query["status"], after=query.get("after"), before=query.get("before")
    )
    return Reply(
        {"items": [_alert(a) for a in page.items], "after": page.after, "before": page.before}
    )


@operation(
    "/alerts",
    "POST",
    scope="write",
    permission="compose",
    tag=TAG,
    body=s.AlertIn,
    response=s.AlertOut,
    status=201,
    idempotent=True,
    etag=True,
    summary="Create a draft of any kind (the JSON of `clarion alerts create`)",
)
def alert_create(body: dict) -> Reply:
    """A draft, refused with every problem named if it would not render."""
    draft = campaigns.Draft.from_json_names(db(), _raw_json())
    alert = campaigns.create_draft(db(), token_use().editor, draft, ip())
    return Reply(_alert(alert), 201)


@operation(
    "/alerts/<int:alert_id>",
    "GET",
    scope="read",
    tag=TAG,
    response=s.AlertOut,
    etag=True,
    summary="One alert",
)
def alert_get(alert_id: int) -> Reply:
    """An alert as saved."""
    return Reply(_alert(campaigns.get_alert(db(), alert_id)))


@operation(
    "/alerts/<int:alert_id>",
    "PATCH",
    scope="write",
    permission="compose",
    tag=TAG,
    body=s.AlertUpdate,
    response=s.AlertOut,
    etag=True,
    summary="Change a draft or scheduled alert (fields left out stay as they are)",
)
def alert_update(alert_id: int, body: dict) -> Reply:
    """The fields given replace the saved ones; the kind stays what it was."""
    alert = campaigns.get_alert(db(), alert_id)
    if_match(_alert(alert))
    raw = _raw_json()
    merged = {**_current_json(alert), **raw}
    if isinstance(raw.get("audience"), dict):
        merged["audience"] = {**_current_json(alert)["audience"], **raw["audience"]}
    draft = campaigns.Draft.from_json_names(db(), merged)
    campaigns.update_draft(db(), token_use().editor, alert, draft, ip())
    return Reply(_alert(alert))


@operation(
    "/alerts/<int:alert_id>/preview",
    "GET",
    scope="read",
    tag=TAG,
    response=s.PreviewOut,
    summary="The alert rendered: subject, HTML and text",
)
def alert_preview(alert_id: int) -> Reply:
    """Rendered for a neutral reader, as the admin preview is."""
    mail = campaigns.render_preview(db(), campaigns.get_alert(db(), alert_id))
    return Reply({"subject": mail.subject, "html": mail.html, "text": mail.text})


@operation(
    "/alerts/<int:alert_id>/schedule",
    "POST",
    scope="send",
    permission="send",
    tag=TAG,
    body=s.ScheduleIn,
    response=s.AlertOut,
    idempotent=True,
    summary="Schedule a draft (the time in the token's editor's zone)",
)
def alert_schedule(alert_id: int, body: dict) -> Reply:
    """draft → scheduled."""
    alert = campaigns.get_alert(db(), alert_id)
    campaigns.schedule(db(), token_use().editor, alert, body["at"], ip())
    return Reply(_alert(alert))


def _state_change(alert_id: int, action: str) -> Reply:
    alert = sending.get_alert(db(), alert_id)
    SEND_STATES[action](db(), alert, token_use().editor, ip())
    after = [lambda: dispatch.enqueue_dispatch(alert_id)] if action in DISPATCHES else []
    return Reply(_alert(alert), 200, after)


@operation(
    "/alerts/<int:alert_id>/send",
    "POST",
    scope="send",
    permission="send",
    tag=TAG,
    response=s.AlertOut,
    idempotent=True,
    summary="Freeze and send now; with an Idempotency-Key a retry never sends twice",
)
def alert_send(alert_id: int) -> Reply:
    """draft or scheduled → sending."""
    return _state_change(alert_id, "send")


@operation(
    "/alerts/<int:alert_id>/pause",
    "POST",
    scope="send",
    permission="send",
    tag=TAG,
    response=s.AlertOut,
    summary="Stop handing out work",
)
def alert_pause(alert_id: int) -> Reply:
    """sending → paused."""
    return _state_change(alert_id, "pause")


@operation(
    "/alerts/<int:alert_id>/resume",
    "POST",
    scope="send",
    permission="send",
    tag=TAG,
    response=s.AlertOut,
    idempotent=True,
    summary="Carry on sending",
)
def alert_resume(alert_id: int) -> Reply:
    """paused → sending."""
    return _state_change(alert_id, "resume")


@operation(
    "/alerts/<int:alert_id>/cancel",
    "POST",
    scope="send",
    permission="send",
    tag=TAG,
    response=s.AlertOut,
    summary="Stop for good",
)
def alert_cancel(alert_id: int) -> Reply:
    """→ cancelled; readers not yet reached are skipped."""
    return _state_change(alert_id, "cancel")


@operation(
    "/alerts/<int:alert_id>/progress",
    "GET",
    scope="read",
    tag=TAG,
    response=s.ProgressOut,
    summary="Counts per status, rate and ETA",
)
def alert_progress(alert_id: int) -> Reply:
    """Where a send stands."""
    return Reply(dump(s.ProgressOut, sending.progress(db(), alert_id).as_dict()))


@operation(
    "/alerts/<int:alert_id>/stats",
    "GET",
    scope="read",
    tag=TAG,
    response=s.StatsOut,
    summary="Deliveries, bounces, clicks, opens and signatures of an alert",
)
def alert_stats(alert_id: int) -> Reply:
    """The figures the admin's stats page shows."""
    figures = stats.alert_stats(db(), campaigns.get_alert(db(), alert_id))
    return Reply(dump(s.StatsOut, asdict(figures)))
