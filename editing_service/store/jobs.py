"""The job queue: enqueue, claim (never twice, even across processes), progress, finish, cancel, recover.

Every state change is a compare-and-set UPDATE guarded by the state it expects (status, owner, attempt),
so that workers in several processes sharing one PostgreSQL (or one SQLite file) cannot run a job twice
or overwrite each other. A worker that dies leaves its job `running` with an old heartbeat;
`recover_stale_jobs` puts it back in the queue, or fails it after `max_attempts`.
An edit's status, and a discovery's, follow the status of its job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from numbers import Real
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Row, or_, select, update
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import Conflict, Invalid, NotFound, check_choice
from editing_service.store.projects import require_project
from editing_service.store.quota import JobQuota, check_job_quota
from editing_service.store.records import FINISHED_STATUSES, JOB_KINDS, JOB_STATUSES, JobRecord
from editing_service.store.tables import DiscoveryRow, EditRow, JobRow, new_id, utcnow

JOB_NOT_FOUND = "Job {id!r} does not exist."
JOB_ALREADY_FINISHED = (
    "Job {id!r} has already finished ({status}); only queued or running jobs can be cancelled."
)
WORKER_LOST = (
    "The worker running this job stopped responding (last heartbeat {time}); it was tried {n} times."
)
WORKER_LOST_AFTER_CANCEL = (
    "The worker running this job stopped responding (last heartbeat {time}) after cancellation was requested."
)
RELEASED_STEP = "handed back to the queue: its worker shut down"
REQUEUED_STEP = "requeued after a lost worker"
INVALID_FRACTION = "fraction must be a number from 0 to 1, not {value!r}."
INVALID_STALE_AFTER = "stale_after must be a non-negative number of seconds, not {value!r}."
INVALID_MAX_ATTEMPTS = "max_attempts must be an integer >= 1, not {value!r}."

# How many queued jobs one claim looks at before looking again (others may have taken them meanwhile).
_CLAIM_BATCH = 16


def enqueue_job(
    db: Database, *, project_id: str, kind: str, params: dict[str, Any] | None = None
) -> JobRecord:
    """Queue a 'discover' or 'edit' job for a project."""
    check_choice(kind, JOB_KINDS, "kind")
    with db.session() as session:
        require_project(session, project_id, lock="share")
        return add_job(session, project_id=project_id, kind=kind, params=params).record()


def get_job(db: Database, job_id: str) -> JobRecord:
    with db.session(readonly=True) as session:
        return _require_job(session, job_id).record()


def list_jobs(db: Database, *, project_id: str | None = None, status: str | None = None) -> list[JobRecord]:
    """Jobs, newest first, optionally of one project and in one status."""
    query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id)
    if project_id is not None:
        query = query.where(JobRow.project_id == project_id)
    if status is not None:
        query = query.where(JobRow.status == check_choice(status, JOB_STATUSES, "status"))
    with db.session(readonly=True) as session:
        return [row.record() for row in session.scalars(query)]


def claim_job(db: Database, *, worker_id: str) -> JobRecord | None:
    """Take the oldest queued job for `worker_id` (status running, attempts + 1), or None if none is queued."""
    with db.session() as session:
        while True:
            candidates = session.scalars(
                select(JobRow.id)
                .where(JobRow.status == "queued")
                .order_by(JobRow.created_at, JobRow.id)
                .limit(_CLAIM_BATCH)
            ).all()
            if not candidates:
                return None
            for job_id in candidates:
                now = utcnow()
                claimed = _update(
                    session,
                    (JobRow.id == job_id, JobRow.status == "queued"),
                    status="running",
                    worker_id=worker_id,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=JobRow.attempts + 1,
                    step="",
                    progress=0.0,
                )
                if claimed.rowcount == 1:
                    _follow_job_status(session, [job_id], "running")
                    return _load(session, job_id)


def report_progress(db: Database, job_id: str, *, worker_id: str, step: str, fraction: float) -> bool:
    """Record progress (and a heartbeat) of a job that `worker_id` is running.

    Returns True when the worker should stop: cancellation was requested, or the job is no longer
    running under this worker (it was recovered, failed or finished elsewhere; nothing is recorded then).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0.0 <= fraction <= 1.0:
        raise Invalid(INVALID_FRACTION.format(value=fraction))
    return _touch(db, job_id, worker_id, step=step, progress=float(fraction))


def heartbeat(db: Database, job_id: str, *, worker_id: str) -> bool:
    """Record that `worker_id` is still running the job; returns True when it should stop (as report_progress)."""
    return _touch(db, job_id, worker_id)


def finish_job(db: Database, job_id: str, *, worker_id: str, status: str, error: str | None = None) -> bool:
    """End a job that `worker_id` is running; returns False (and changes nothing) if it no longer owns it."""
    check_choice(status, FINISHED_STATUSES, "status")
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if status == "succeeded":
        values["progress"] = 1.0
    with db.session() as session:
        finished = _update(session, _owned(job_id, worker_id), **values)
        if finished.rowcount != 1:
            return False
        _follow_job_status(session, [job_id], status)
        return True


def request_cancel(db: Database, job_id: str) -> JobRecord:
    """Cancel a queued job at once; ask the worker of a running job to stop at its next progress report."""
    with db.session() as session:
        if _update(
            session,
            (JobRow.id == job_id, JobRow.status == "queued"),
            status="cancelled",
            finished_at=utcnow(),
        ).rowcount:
            _follow_job_status(session, [job_id], "cancelled")
        elif not _update(
            session, (JobRow.id == job_id, JobRow.status == "running"), cancel_requested=True
        ).rowcount:
            row = _require_job(session, job_id)
            raise Conflict(JOB_ALREADY_FINISHED.format(id=job_id, status=row.status))
        return _load(session, job_id)


def recover_stale_jobs(db: Database, *, stale_after: float, max_attempts: int) -> list[JobRecord]:
    """Requeue (or fail, after `max_attempts`) every running job whose heartbeat is older than `stale_after` s.

    A stale job whose cancellation was requested is cancelled instead. Returns the jobs changed.
    """
    if isinstance(stale_after, bool) or not isinstance(stale_after, Real) or not stale_after >= 0:
        raise Invalid(INVALID_STALE_AFTER.format(value=stale_after))
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise Invalid(INVALID_MAX_ATTEMPTS.format(value=max_attempts))
    cutoff = utcnow() - timedelta(seconds=stale_after)
    is_stale = or_(JobRow.heartbeat_at.is_(None), JobRow.heartbeat_at < cutoff)
    with db.session() as session:
        stale = session.execute(
            select(
                JobRow.id, JobRow.attempts, JobRow.cancel_requested, JobRow.heartbeat_at, JobRow.started_at
            ).where(JobRow.status == "running", is_stale)
        ).all()
        changed = []
        for job in stale:
            status, values = _recovery(job, max_attempts)
            # Guarded by the attempt count too: a job that was requeued and claimed again is not stale.
            guard = (
                JobRow.id == job.id,
                JobRow.status == "running",
                JobRow.attempts == job.attempts,
                is_stale,
            )
            if _update(session, guard, status=status, **values).rowcount == 1:
                _follow_job_status(session, [job.id], status)
                changed.append(job.id)
        return [_load(session, job_id) for job_id in changed]


def release_jobs_of_worker(db: Database, worker_id: str) -> list[JobRecord]:
    """Hand every job `worker_id` is running back to the queue, this attempt not counted (a clean shutdown)."""
    with db.session() as session:
        released = session.scalars(
            update(JobRow)
            .where(JobRow.status == "running", JobRow.worker_id == worker_id)
            .values(status="queued", worker_id=None, step=RELEASED_STEP, heartbeat_at=None,
                    attempts=JobRow.attempts - 1)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        ).all()
        _follow_job_status(session, released, "queued")
        return [_load(session, job_id) for job_id in released]


def add_job(
    session: Session, *, project_id: str, kind: str, params: dict[str, Any] | None,
    principal: str | None = None, quota: JobQuota | None = None,
) -> JobRow:
    """Add a queued job to the session's transaction (the project must exist), created by `principal`;
    with a `quota`, QuotaExceeded when the principal may create no more jobs now."""
    if principal is not None and quota is not None:
        check_job_quota(session, principal, quota)
    row = JobRow(
        id=new_id(),
        project_id=project_id,
        kind=kind,
        status="queued",
        step="",
        progress=0.0,
        params=dict(params or {}),
        attempts=0,
        cancel_requested=False,
        created_at=utcnow(),
        principal=principal,
    )
    session.add(row)
    session.flush()
    return row


def _touch(db: Database, job_id: str, worker_id: str, **values: Any) -> bool:
    with db.session() as session:
        cancel_requested = session.scalars(
            update(JobRow)
            .where(*_owned(job_id, worker_id))
            .values(heartbeat_at=utcnow(), **values)
            .returning(JobRow.cancel_requested)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        return True if cancel_requested is None else bool(cancel_requested)


def _owned(job_id: str, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    return (JobRow.id == job_id, JobRow.status == "running", JobRow.worker_id == worker_id)


def _update(session: Session, where: Sequence[ColumnElement[bool]], **values: Any) -> CursorResult[Any]:
    statement = update(JobRow).where(*where).values(**values).execution_options(synchronize_session=False)
    return cast(CursorResult[Any], session.execute(statement))


def _follow_job_status(session: Session, job_ids: Sequence[str], status: str) -> None:
    """Edits and discoveries take their job's status; a discovery already made current stays succeeded
    (its job may still be requeued if its worker died between the promotion and finishing the job)."""
    if not job_ids:
        return
    session.execute(
        update(EditRow)
        .where(EditRow.job_id.in_(job_ids))
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    finished = {"finished_at": utcnow()} if status in FINISHED_STATUSES else {}
    session.execute(
        update(DiscoveryRow)
        .where(DiscoveryRow.job_id.in_(job_ids), DiscoveryRow.status != "succeeded")
        .values(status="failed" if status == "succeeded" else status, **finished)
        .execution_options(synchronize_session=False)
    )


def _require_job(session: Session, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id, populate_existing=True)
    if row is None:
        raise NotFound(JOB_NOT_FOUND.format(id=job_id))
    return row


def _load(session: Session, job_id: str) -> JobRecord:
    return _require_job(session, job_id).record()


def _recovery(job: Row[Any], max_attempts: int) -> tuple[str, dict[str, Any]]:
    """The status a stale job goes to, and the other columns that change with it."""
    last_seen = _describe_time(job.heartbeat_at or job.started_at)
    if job.cancel_requested:
        return "cancelled", {
            "error": WORKER_LOST_AFTER_CANCEL.format(time=last_seen),
            "finished_at": utcnow(),
        }
    if job.attempts < max_attempts:
        return "queued", {
            "worker_id": None,
            "step": REQUEUED_STEP,
            "progress": 0.0,
            "started_at": None,
            "heartbeat_at": None,
        }
    return "failed", {"error": WORKER_LOST.format(time=last_seen, n=job.attempts), "finished_at": utcnow()}


def _describe_time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "unknown"
