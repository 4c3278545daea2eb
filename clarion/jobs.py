"""Background jobs (imports, exports): their files, their progress, and their clean-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion.db import utcnow
from clarion.errors import NotFound
from clarion.models import Editor, Job

MAPPING, QUEUED, RUNNING, DONE, FAILED = "mapping", "queued", "running", "done", "failed"
FILES_KEPT = timedelta(days=7)


def job_dir(instance_dir: Path, kind: str) -> Path:
    """instance/imports or instance/exports, created on first use, private to Clarion."""
    directory = instance_dir / f"{kind}s"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


def new_job(
    session: Session,
    kind: str,
    editor: Editor | None,
    options: dict[str, Any],
    status: str = QUEUED,
) -> Job:
    """A job owned by an editor (None from the command line)."""
    job = Job(
        kind=kind, status=status, options=options, created_by_id=editor.id if editor else None
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, uid: str, kind: str | None = None) -> Job:
    """The job with this public uid (and kind), or NotFound."""
    query = select(Job).where(Job.uid == uid)
    if kind:
        query = query.where(Job.kind == kind)
    job = session.scalar(query)
    if job is None:
        raise NotFound("No such job.")
    return job


def recent(session: Session, limit: int = 20) -> list[Job]:
    """The newest jobs."""
    return list(session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def progress(job: Job) -> dict[str, Any]:
    """What the progress bar shows."""
    percent = (
        100 if job.status == DONE else int(100 * job.processed / job.total) if job.total else 0
    )
    return {
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "percent": min(percent, 100),
        "created": job.created,
        "updated": job.updated,
        "rejected": job.rejected,
        "error": job.error,
        "finished": job.status in {DONE, FAILED},
    }


def fail(job: Job, message: str) -> None:
    """Mark a job failed with a message for the editor."""
    job.status = FAILED
    job.error = message
    job.finished_at = utcnow()


def purge_files(session: Session) -> int:
    """Delete job files (uploads, rejected rows, exports) older than FILES_KEPT."""
    cutoff = utcnow() - FILES_KEPT
    removed = 0
    for job in session.scalars(select(Job).where(Job.created_at < cutoff)):
        for attr in ("input_path", "result_path"):
            path = getattr(job, attr)
            if path and Path(path).exists():
                Path(path).unlink()
                removed += 1
            setattr(job, attr, "")
    return removed
