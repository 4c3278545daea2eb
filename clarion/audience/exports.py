"""CSV export of subscribers with their lists and tags (owners only; every export audited)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clarion import audit, jobs
from clarion.alerts import segments
from clarion.audience.directory import SubscriberFilter, filtered
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.editors import require
from clarion.inputs import csv_cell
from clarion.models import (
    Editor,
    Job,
    MailingList,
    Segment,
    Subscriber,
    SubscriberTag,
    Subscription,
    Tag,
)

PAGE = 5000
COLUMNS = ["email", "name", "language", "created_at", "lists", "tags"]


def start_export(session: Session, editor: Editor, f: SubscriberFilter, ip: str | None) -> Job:
    """Queue an export of the subscribers matching `f`; recorded in the audit log."""
    require(editor, "export")
    job = jobs.new_job(session, "export", editor, {"filter": f.as_args()})
    path = jobs.job_dir(get_settings().instance_dir, "export") / f"{job.uid}.csv"
    job.result_path = str(path)
    audit.record(session, editor, "subscribers.export", f"job:{job.uid}", ip, filter=f.as_args())
    return job


def start_segment_export(
    session: Session, editor: Editor, segment: Segment, ip: str | None
) -> Job:
    """Queue an export of the readers who meet a saved segment's conditions (as they are now;
    whatever their lists); refused while the segment names something deleted. Audited."""
    require(editor, "export")
    segments.check(session, segment.conditions, saved=True)
    options = {"filter": {}, "segment": segment.id, "conditions": segment.conditions}
    job = jobs.new_job(session, "export", editor, options)
    path = jobs.job_dir(get_settings().instance_dir, "export") / f"{job.uid}.csv"
    job.result_path = str(path)
    audit.record(
        session, editor, "segment.export", f"job:{job.uid}", ip, segment=segment.id,
        name=segment.name,
    )  # fmt: skip
    return job


def _filter(job: Job) -> SubscriberFilter:
    args = job.options.get("filter", {})
    return SubscriberFilter(
        q=args.get("q", ""),
        list_id=args.get("list"),
        status=args.get("status", ""),
        tag_id=args.get("tag"),
    )


def run_export(session: Session, job: Job) -> Iterator[Job]:
    """Write the CSV page by page (keyset on id); yields after each page for the caller."""
    query, keys = filtered(_filter(job))
    if job.options.get("conditions"):
        query = query.where(segments.condition(session, job.options["conditions"]))
    ids_query = query.with_only_columns(keys[0]).order_by(keys[0])
    job.total = session.scalar(select(func.count()).select_from(ids_query.subquery())) or 0
    job.status = jobs.RUNNING
    slugs = dict(session.execute(select(MailingList.id, MailingList.slug)).all())
    path = Path(job.result_path)
    yield job
    last = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        path.chmod(0o600)
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        while True:
            ids = list(session.scalars(ids_query.where(*(k > last for k in keys)).limit(PAGE)))
            if not ids:
                break
            out.writerows(_rows(session, ids, slugs))
            last = ids[-1]
            job.processed += len(ids)
            yield job
    job.status = jobs.DONE
    job.finished_at = utcnow()
    yield job


def _rows(session: Session, ids: list[int], slugs: dict[int, str]) -> list[list[str]]:
    lists: dict[int, list[str]] = {}
    for sid, lid, status in session.execute(
        select(Subscription.subscriber_id, Subscription.list_id, Subscription.status).where(
            Subscription.subscriber_id.in_(ids)
        )
    ):
        lists.setdefault(sid, []).append(
            f"{slugs.get(lid, lid)}:{getattr(status, 'value', status)}"
        )
    tag_names: dict[int, list[str]] = {}
    for sid, name in session.execute(
        select(SubscriberTag.subscriber_id, Tag.name)
        .join(Tag, Tag.id == SubscriberTag.tag_id)
        .where(SubscriberTag.subscriber_id.in_(ids))
    ):
        tag_names.setdefault(sid, []).append(name)
    people = session.scalars(
        select(Subscriber).where(Subscriber.id.in_(ids)).order_by(Subscriber.id)
    )
    return [
        [
            csv_cell(value)
            for value in (
                s.email,
                s.name or "",
                s.language,
                s.created_at.isoformat(timespec="seconds"),
                ";".join(sorted(lists.get(s.id, []))),
                ";".join(sorted(tag_names.get(s.id, []))),
            )
        ]
        for s in people
    ]


def download(session: Session, editor: Editor, job: Job, ip: str | None) -> Path:
    """The finished export's file for an owner; the download itself is audited too."""
    require(editor, "export")
    audit.record(session, editor, "subscribers.export_download", f"job:{job.uid}", ip)
    return Path(job.result_path)
