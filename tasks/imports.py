"""Tasks that import and export subscribers; each chunk commits, so progress shows live."""

from __future__ import annotations

from sqlalchemy.orm import Session

from clarion import jobs
from clarion.audience import exports, imports
from clarion.db import session_factory, session_scope
from clarion.models import Job
from tasks import app


def _run(job_id: int, steps) -> None:
    session: Session = session_factory()()
    try:
        job = session.get(Job, job_id)
        if job is None or job.status in {jobs.DONE, jobs.FAILED}:
            return
        try:
            for _ in steps(session, job):
                session.commit()
        except Exception as exc:
            # Committed chunks stay; the job says where it stopped and why.
            session.rollback()
            job = session.get(Job, job_id)
            if job is not None:
                jobs.fail(job, f"Stopped after {job.processed} rows: {exc}")
                session.commit()
            raise
    finally:
        session.close()


@app.task(acks_late=True)
def run_import(job_id: int) -> None:
    """Import one uploaded CSV (resumes after the last committed chunk if interrupted)."""
    _run(job_id, imports.run_import)


@app.task(acks_late=True)
def run_export(job_id: int) -> None:
    """Write one export CSV."""
    _run(job_id, exports.run_export)


@app.task
def purge_job_files() -> int:
    """Delete import and export files older than a week."""
    with session_scope() as session:
        return jobs.purge_files(session)
