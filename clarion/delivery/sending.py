"""Sending an alert: the checks, the freeze, and every state change of a send.

An alert moves draft/scheduled → sending → sent, and sending ⇄ paused, and scheduled, sending
or paused → cancelled. Each move is one conditional UPDATE, so two editors (or an editor and
the engine) racing each other get one success and one InvalidTransition, never a mixed state.
The callers commit and then enqueue `tasks.delivery.dispatch` (start, resume, send_to_unreached).
Each change an editor asks for checks the editor's "send" permission here too, whatever the
caller checked: no adapter can forget it. No actor means the engine or the command line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from typing import Any

from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from clarion import audit, editors, outbox, tokens
from clarion.alerts import (
    campaigns,
    freeze,
    hashtag_days,
    identity,
    kinds,
    petition_pick,
    reasons,
    segments,
    versions,
)
from clarion.alerts.rendering import AlertContent
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.delivery import health, members, rates
from clarion.errors import InvalidTransition, NotFound, ValidationError
from clarion.i18n import NA_, admin_gettext
from clarion.inputs import header_text
from clarion.models import (
    Alert,
    AlertRole,
    AlertStatus,
    BatchState,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
    Editor,
    MailingList,
    Subscriber,
)
from clarion.tracking import opens

S = AlertStatus
# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[AlertStatus], AlertStatus]] = {
    "start": (frozenset({S.DRAFT, S.SCHEDULED}), S.SENDING),
    "pause": (frozenset({S.SENDING}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.SENDING),
    "cancel": (frozenset({S.SCHEDULED, S.SENDING, S.PAUSED}), S.CANCELLED),
    "finish": (frozenset({S.SENDING}), S.SENT),
    "unschedule": (frozenset({S.SCHEDULED}), S.DRAFT),
}
REFUSALS = {
    "start": NA_("Only a draft or a scheduled alert can be sent; this one is %(status)s."),
    "pause": NA_("Only an alert that is sending can be paused; this one is %(status)s."),
    "resume": NA_("Only a paused alert can be resumed; this one is %(status)s."),
    "cancel": NA_(
        "Only a scheduled, sending or paused alert can be cancelled; this one is %(status)s."
    ),
    "finish": NA_("Only an alert that is sending can finish; this one is %(status)s."),
    "unschedule": NA_("Only a scheduled alert can go back to draft; this one is %(status)s."),
}
UNREACHED_ROLE = AlertRole.UNREACHED.value
# The moves the webhooks are told of: a send begins, a send ends (sent or cancelled).
WEBHOOK_EVENTS = {"start": "alert.started", "finish": "alert.finished", "cancel": "alert.finished"}
# A series step is sent to each reader as the series reaches them (clarion.series).
SERIES_STEP_REFUSAL = NA_(
    "This alert is a step of a series: each reader gets it when the series reaches them."
)


def transition(
    session: Session, alert: Alert, action: str, reason: str = "", **values: Any
) -> None:
    """Move `alert` by `action` if its current state allows it, else InvalidTransition."""
    sources, target = TRANSITIONS[action]
    changes = {"status": target, "status_reason": reason, "updated_at": utcnow(), **values}
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status.in_(sources))
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(alert)
        raise InvalidTransition(
            admin_gettext(REFUSALS[action], status=admin_gettext(alert.status.value))
        )
    # The object says what the row now says. (SQLAlchemy 2.1's "fetch" synchronisation left
    # started_at unset on it, so a start and a cancel in one session told no webhook.)
    for key, value in changes.items():
        set_committed_value(alert, key, value)
    if action in WEBHOOK_EVENTS and (action != "cancel" or alert.started_at is not None):
        # In the transaction of the move itself: a rolled-back start tells no one.
        payload = {"alert_id": alert.id, "uid": alert.uid, "status": target.value}
        outbox.record(session, WEBHOOK_EVENTS[action], payload)


def check_actor(actor: Editor | None) -> None:
    """Forbidden unless the editor asking may send; the engine and the command line (no actor)
    may."""
    if actor is not None:
        editors.require(actor, "send")


def get_alert(session: Session, alert_id: int) -> Alert:
    """The alert with this id, or NotFound."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(admin_gettext("There is no such alert."))
    return alert


# --- Audience ------------------------------------------------------------------------------


def clean_audience(session: Session, raw: dict[str, Any] | None) -> dict[str, list]:
    """The audience as ids and codes that exist (and the petition whose signers it leaves
    out); ValidationError when no list is chosen."""
    raw = raw or {}
    try:
        list_ids = sorted({int(i) for i in raw.get("lists") or []})
        tag_ids = sorted({int(i) for i in raw.get("tags") or []})
        skip = raw.get("skip_signers_of")
        signers = {} if skip is None else {"skip_signers_of": int(skip)}
    except (TypeError, ValueError):
        raise ValidationError(
            {"audience": admin_gettext("Lists and tags must be given by their ids.")}
        ) from None
    languages = sorted({str(code) for code in raw.get("languages") or []})
    conditions = _clean_conditions(session, raw.get("conditions"))
    if not list_ids:
        raise ValidationError({"audience": admin_gettext("Choose at least one list to send to.")})
    known = set(session.scalars(select(MailingList.id).where(MailingList.id.in_(list_ids))))
    if known != set(list_ids):
        raise ValidationError(
            {"audience": admin_gettext("One of the chosen lists no longer exists.")}
        )
    return {"lists": list_ids, "tags": tag_ids, "languages": languages, **conditions, **signers}


def _clean_conditions(session: Session, raw: Any) -> dict[str, Any]:
    """The audience's conditions checked, with each saved segment replaced by its conditions as
    they are now: what the send freezes. ValidationError names the path of each fault."""
    if not raw:
        return {}
    tree = segments.parse(raw)
    segments.check(session, tree)
    inlined = segments.inline(session, tree)
    segments.check(session, inlined)  # what a saved segment names may have gone since
    return {"conditions": inlined}


def audience_ids(
    session: Session, audience: dict[str, Any], after: int = 0, upto: int | None = None
) -> Select:
    """Subscriber ids in the audience above `after`, in id order (for keyset paging); with
    `upto`, only those up to it, unordered (one page of an id range, whose every EXISTS reads
    only that range: segments.page_of)."""
    if upto is not None:
        return members.in_range(session, audience, after, upto)
    with segments.page_of(after, None):  # all readers, even within another page's building
        query = campaigns.audience_query(session, audience)
    return query.where(Subscriber.id > after).order_by(Subscriber.id)


def audience_size(session: Session, audience: dict[str, list]) -> int:
    """How many subscribers the audience reaches right now."""
    return (
        session.scalar(select(func.count()).select_from(audience_ids(session, audience).subquery()))
        or 0
    )


# --- Start: check and freeze --------------------------------------------------------------


def _sender(session: Session, alert: Alert, audience: dict[str, list]) -> dict[str, Any]:
    """From, Reply-To and the list named in List-Id and Feedback-ID, as they are now."""
    list_id = alert.sender_list_id or audience["lists"][0]
    sending_list = session.get(MailingList, list_id)
    if sending_list is None:
        raise ValidationError(
            {"sender_list_id": admin_gettext("The sending list no longer exists.")}
        )
    campaign = identity.load(session)
    sender = campaign.sender
    if sending_list.from_email:
        name = header_text(sending_list.from_name or campaign.sender_name)
        sender = formataddr((name, sending_list.from_email))
    return {
        "from": sender,
        "reply_to": sending_list.reply_to or None,
        "list": {"id": sending_list.id, "slug": sending_list.slug, "name": sending_list.name},
    }


def check_sendable(session: Session, alert: Alert) -> dict[str, list]:
    """Everything a send needs, checked at once; returns the clean audience."""
    errors: dict[str, str] = {}
    if not alert.subject.strip():
        errors["subject"] = admin_gettext("Write a subject before sending.")
    try:
        kinds.validate_fields(alert.kind, alert.fields or {})
        petition_pick.picked(session, alert.fields or {})
    except ValidationError as exc:
        errors.update(exc.errors)
    audience: dict[str, list] = {}
    try:
        audience = clean_audience(session, alert.audience)
    except ValidationError as exc:
        errors.update(exc.errors)
    if audience and not errors and audience_size(session, audience) == 0:
        errors["audience"] = admin_gettext(
            "Nobody in this audience is subscribed: there is no one to send to."
        )
    if errors:
        raise ValidationError(errors)
    return audience


def freeze_alert(session: Session, alert: Alert, audience: dict[str, list]) -> None:
    """Render once per version and store what every recipient gets; later edits cannot touch
    it. The primary goes in frozen_subject/html/text, each finished version in frozen_versions;
    all share one table of tracked links."""
    settings = get_settings()
    language = versions.primary_language(alert)
    # The skeleton greets each reader in the language the layout was frozen in.
    meta = {**_sender(session, alert, audience), "audience": audience, "language": language}
    site = identity.site_context(session, meta["list"]["name"])
    links = freeze.LinkTable(settings.base_url)
    # Open tracking, when an owner turned it on: a pixel carrying each recipient's token.
    pixel = opens.pixel_url(settings.base_url, freeze.marker("token"))
    frozen: dict[str, dict[str, str]] = {}
    hashes = []
    # A picked petition's count and goal, read once: every version shows the same figures.
    progress = petition_pick.with_progress(session, alert.kind, alert.fields or {})
    progress = {k: v for k, v in progress.items() if k in kinds.PROGRESS_FIELDS}
    progress.update(kinds.stay_fields(alert.stay_days, settings.base_url))
    for code in (language, *versions.finished(alert)):
        content, lang = versions.content(alert, None if code == language else code)
        try:
            checked = AlertContent(
                kind=content.kind,
                subject=content.subject.strip(),
                fields={**kinds.validate_fields(alert.kind, content.fields), **progress},
                preheader=content.preheader or "",
            )
            version = freeze.freeze_content(checked, site, alert.layout_mjml or None, lang, links)
        except ValidationError as exc:
            if code == language:
                raise
            name = versions.label(code)  # a version's problem names its language
            raise ValidationError(
                {f"{code}.{k}": f"{name} version: {v}" for k, v in exc.errors.items()}
            ) from None
        html = opens.with_open_pixel(session, version.html, pixel)
        frozen[code] = {"subject": version.subject, "html": html, "text": version.text}
        hashes.append(f"{code}:{version.hash}")
    _check_stay_button(alert, links.urls, frozen, settings.base_url)
    primary = frozen.pop(language)
    alert.frozen_subject = primary["subject"]
    alert.frozen_html = primary["html"]
    alert.frozen_text = primary["text"]
    alert.frozen_versions = frozen
    alert.frozen_links = list(links.urls)
    # One version's hash alone when there is one, as before versions existed.
    alert.frozen_hash = (
        hashes[0].partition(":")[2]
        if len(hashes) == 1
        else hashlib.sha256(" ".join(hashes).encode()).hexdigest()
    )
    alert.frozen_meta = meta
    alert.frozen_at = utcnow()


def _check_stay_button(
    alert: Alert, links: list[str], frozen: dict[str, dict[str, str]], base_url: str
) -> None:
    # Readers of a "stay subscribed?" mail who do not press its button are unsubscribed: a
    # mail whose HTML lacks one (a custom layout that left it out) would remove them all.
    if alert.stay_days is None:
        return
    target = base_url + tokens.STAY_PATH
    tracked = f"/r/{freeze.marker('token')}/{links.index(target)}" if target in links else None
    if tracked is None or any(tracked not in version["html"] for version in frozen.values()):
        raise ValidationError(
            {
                "layout": admin_gettext(
                    'This "stay subscribed?" mail has no "Yes, keep me" button: its layout '
                    "must link to %(url)s (the newsletter layout does).",
                    url=target,
                )
            }
        )


def start(
    session: Session, alert: Alert, actor: Editor | None = None, ip: str | None = None
) -> Alert:
    """Check, freeze and move the alert to SENDING; commit, then enqueue dispatch(alert.id)."""
    check_actor(actor)
    if alert.status not in TRANSITIONS["start"][0]:
        raise InvalidTransition(
            admin_gettext(REFUSALS["start"], status=admin_gettext(alert.status.value))
        )
    if alert.role == AlertRole.SERIES_STEP:
        raise InvalidTransition(admin_gettext(SERIES_STEP_REFUSAL))
    hashtag_days.inherit(session, alert)
    audience = check_sendable(session, alert)
    freeze_alert(session, alert, audience)
    transition(session, alert, "start", started_at=utcnow(), finished_at=None, recipients=0)
    audit.record(session, actor, "alert.send", f"alert:{alert.id}", ip, subject=alert.subject)
    return alert


def start_scheduled(session: Session, alert: Alert) -> bool:
    """Start a scheduled alert that fell due; if it cannot be sent, back to draft with why."""
    try:
        start(session, alert)
    except ValidationError as exc:
        when = alert.scheduled_at.strftime("%Y-%m-%d %H:%M") if alert.scheduled_at else ""
        reason = reasons.stored(reasons.SCHEDULE_FAILED, when=when, problem=exc)
        transition(session, alert, "unschedule", reason=reason, scheduled_at=None)
        audit.record(session, None, "alert.schedule_failed", f"alert:{alert.id}", reason=reason)
        return False
    return True


# --- Pause, resume, cancel ----------------------------------------------------------------


def pause(
    session: Session,
    alert: Alert,
    actor: Editor | None = None,
    ip: str | None = None,
    reason: str = "",
) -> Alert:
    """Stop handing out work; batches in flight stop at their next checkpoint."""
    check_actor(actor)
    by = reasons.stored(reasons.PAUSED_BY, who=actor.email) if actor else reasons.PAUSED_BY_ENGINE
    transition(session, alert, "pause", reason=reason or by)
    audit.record(session, actor, "alert.pause", f"alert:{alert.id}", ip, reason=reason)
    return alert


def resume(
    session: Session, alert: Alert, actor: Editor | None = None, ip: str | None = None
) -> Alert:
    """Carry on; deferred recipients are tried again at once. Commit, then enqueue dispatch."""
    check_actor(actor)
    transition(session, alert, "resume")
    now = utcnow()
    # Whatever made us pause has been dealt with: retry now rather than after the backoff.
    session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.status == DeliveryStatus.DEFERRED)
        .values(next_attempt_at=now)
    )
    # Tasks that ran during the pause did nothing; hand every unfinished batch out again.
    session.execute(
        update(DeliveryBatch)
        .where(DeliveryBatch.alert_id == alert.id, DeliveryBatch.state != BatchState.DONE)
        .values(state=BatchState.PENDING, due_at=now)
    )
    audit.record(session, actor, "alert.resume", f"alert:{alert.id}", ip)
    return alert


def cancel(
    session: Session, alert: Alert, actor: Editor | None = None, ip: str | None = None
) -> Alert:
    """Stop for good: recipients not yet reached are marked skipped."""
    check_actor(actor)
    by = reasons.stored(reasons.CANCELLED_BY, who=actor.email) if actor else None
    reason = by or reasons.CANCELLED_FROM_CLI
    transition(session, alert, "cancel", reason=reason, finished_at=utcnow())
    session.execute(
        update(Delivery)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]),
        )
        .values(status=DeliveryStatus.SKIPPED, last_reply="not sent: the alert was cancelled")
    )
    session.execute(
        update(DeliveryBatch)
        .where(DeliveryBatch.alert_id == alert.id)
        .values(state=BatchState.DONE)
    )
    audit.record(session, actor, "alert.cancel", f"alert:{alert.id}", ip)
    return alert


# --- Send to those not yet reached ----------------------------------------------------------


def send_to_unreached(
    session: Session, alert: Alert, actor: Editor | None = None, ip: str | None = None
) -> Alert:
    """A new send of the same frozen alert to audience members it has not reached.

    Semantics: the follow-up is a new alert (role "unreached", parent = the original) with the
    original's frozen content, sender and audience. Its recipients are the audience as it is
    now (subscribed, not suppressed, same lists/tags/languages) minus everyone with a `sent`
    row for the original or any earlier follow-up: readers whose message failed, was skipped,
    deferred until it was cancelled, or who joined since. The original's ledger stays as it
    was. Allowed once the original has ended (sent or cancelled). Commit, then enqueue
    dispatch(new.id).
    """
    check_actor(actor)
    root = session.get(Alert, alert.parent_id) if alert.role == UNREACHED_ROLE else alert
    assert root is not None
    if root.role == AlertRole.WELCOME:
        raise InvalidTransition(
            admin_gettext(
                "A welcome mail goes to each reader as they confirm; it is not sent to the rest."
            )
        )
    if root.role == AlertRole.SERIES_STEP:
        raise InvalidTransition(admin_gettext(SERIES_STEP_REFUSAL))
    if alert.status not in {S.SENT, S.CANCELLED} or root.frozen_at is None:
        raise InvalidTransition(
            "Only an alert that has finished sending or was cancelled can be sent to those it "
            f"did not reach; this one is {alert.status.value}."
        )
    follow_up = Alert(
        kind=root.kind,
        name=f"{root.name or root.subject} (to those not yet reached)"[:200],
        subject=root.subject,
        preheader=root.preheader,
        fields=dict(root.fields or {}),
        audience=dict(root.frozen_meta["audience"]),
        sender_list_id=root.sender_list_id,
        layout_mjml=root.layout_mjml,
        language=root.language,
        translations=dict(root.translations or {}),
        parent_id=root.id,
        role=UNREACHED_ROLE,
        created_by_id=actor.id if actor else None,
        frozen_subject=root.frozen_subject,
        frozen_html=root.frozen_html,
        frozen_text=root.frozen_text,
        frozen_links=list(root.frozen_links),
        frozen_hash=root.frozen_hash,
        frozen_versions=dict(root.frozen_versions or {}),
        frozen_meta=dict(root.frozen_meta),
        frozen_at=utcnow(),
        status=S.SENDING,
        started_at=utcnow(),
    )
    session.add(follow_up)
    session.flush()
    waiting = select(func.count()).select_from(recipients_query(session, follow_up).subquery())
    if not session.scalar(waiting):
        raise ValidationError(
            {"audience": admin_gettext("Everyone in the audience has received this alert.")}
        )
    audit.record(
        session, actor, "alert.send_unreached", f"alert:{follow_up.id}", ip, original=root.id
    )
    return follow_up


def family_ids(session: Session, alert: Alert) -> list[int]:
    """The original alert and its follow-ups: a `sent` row on any of them counts as reached."""
    root_id = alert.parent_id if alert.role == UNREACHED_ROLE and alert.parent_id else alert.id
    children = session.scalars(
        select(Alert.id).where(Alert.parent_id == root_id, Alert.role == UNREACHED_ROLE)
    )
    return [root_id, *children]


def recipients_query(
    session: Session,
    alert: Alert,
    after: int = 0,
    upto: int | None = None,
    chosen: members.Page | None = None,
) -> Select:
    """The subscriber ids dispatch writes to the ledger: above `after` (and up to `upto`).
    With the page a segment send's conditions chose (clarion.delivery.members), its readers
    as chosen: the chooser judged lists, suppression and conditions moments before, and the
    batch checks lists and suppression again when it sends (clarion.delivery.ledger)."""
    if chosen is None:
        query = audience_ids(session, alert.frozen_meta["audience"], after, upto)
    else:
        query = members.chosen_ids(session, chosen, after)
    with segments.page_of(after, upto):
        return _not_yet_reached(session, alert, query)


def _not_yet_reached(session: Session, alert: Alert, query: Select) -> Select:
    """A reminder leaves out who shared; a follow-up to the unreached, who got the mail."""
    if alert.role == AlertRole.REMINDER:
        query = query.where(~hashtag_days.acted(session, alert))
    if alert.role == UNREACHED_ROLE:
        reached = exists().where(
            segments.reader(Delivery.subscriber_id),
            Delivery.alert_id.in_([i for i in family_ids(session, alert) if i != alert.id]),
            Delivery.status == DeliveryStatus.SENT,
        )
        query = query.where(~reached)
    return query


# --- Progress -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a send stands: counts per status, speed and the time still needed."""

    alert_id: int
    status: str
    status_reason: str
    total: int
    counts: dict[str, int]
    rate: float  # messages a second, lately
    eta_seconds: float | None
    dispatched: bool
    started_at: datetime | None
    finished_at: datetime | None
    possible_duplicates: int  # readers who may have got the message twice
    stalled: list[str]  # what stands in the way, while sending

    @property
    def remaining(self) -> int:
        c = self.counts
        return c["queued"] + c["sending"] + c["deferred"]

    @property
    def done(self) -> bool:
        return self.status in {S.SENT.value, S.CANCELLED.value}

    def line(self) -> str:
        """One line for a terminal: sent, deferred, failed, remaining, rate, ETA."""
        c = self.counts
        eta = "—" if self.eta_seconds is None else _duration(self.eta_seconds)
        line = (
            f"{self.status:<9} sent {c['sent']:>7}  deferred {c['deferred']:>5}  "
            f"failed {c['failed']:>5}  skipped {c['skipped']:>5}  remaining {self.remaining:>7}"
            f"  {self.rate:7.0f} msg/s  ETA {eta}"
        )
        if self.possible_duplicates:
            line += f"  possible duplicates {self.possible_duplicates}"
        if self.stalled:
            line += "  stalled: " + "; ".join(self.stalled)
        return line

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "alert_id": self.alert_id,
            "status": self.status,
            "status_reason": self.status_reason,
            "total": self.total,
            "counts": self.counts,
            "remaining": self.remaining,
            "rate": round(self.rate, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "dispatched": self.dispatched,
            "done": self.done,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "possible_duplicates": self.possible_duplicates,
            "stalled": self.stalled,
        }


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def progress(session: Session, alert_id: int) -> Progress:
    """Counts per status from the ledger, the recent rate and an ETA."""
    alert = get_alert(session, alert_id)
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.status)
    ).all()
    counts = {s.value: 0 for s in DeliveryStatus}
    for status, n in rows:
        counts[DeliveryStatus(status).value] = n
    total = sum(counts.values())
    rate = rates.recent_rate(alert)
    if alert.status in {S.SENT, S.CANCELLED}:
        # Nothing is sent lately once it is over: the rate worth showing is the whole send's.
        rate = rates.average_rate(counts["sent"], alert.started_at, alert.finished_at)
    remaining = counts["queued"] + counts["sending"] + counts["deferred"]
    eta = remaining / rate if rate > 0 and alert.status == S.SENDING else None
    stalled = []
    if alert.status == S.SENDING and (remaining or alert.dispatched_at is None):
        stalled = health.stall_reasons(get_settings())
    return Progress(
        alert_id=alert.id,
        status=alert.status.value,
        status_reason=alert.status_reason,
        total=max(total, alert.recipients),
        counts=counts,
        rate=rate,
        eta_seconds=eta,
        dispatched=alert.dispatched_at is not None,
        started_at=alert.started_at,
        finished_at=alert.finished_at,
        possible_duplicates=alert.possible_duplicates or 0,
        stalled=stalled,
    )
