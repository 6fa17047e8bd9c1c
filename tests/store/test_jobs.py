"""The job queue: claims are exclusive even under a race, only the owner reports, stale jobs recover."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from editing_service.store import (
    Conflict,
    Database,
    Invalid,
    NotFound,
    ProjectRecord,
    claim_job,
    enqueue_job,
    finish_job,
    get_job,
    heartbeat,
    list_jobs,
    recover_stale_jobs,
    release_jobs_of_worker,
    report_progress,
    request_cancel,
)
from editing_service.store.errors import INVALID_CHOICE
from editing_service.store.jobs import (
    INVALID_FRACTION,
    INVALID_MAX_ATTEMPTS,
    INVALID_STALE_AFTER,
    JOB_ALREADY_FINISHED,
    JOB_NOT_FOUND,
    RELEASED_STEP,
    REQUEUED_STEP,
    WORKER_LOST,
    WORKER_LOST_AFTER_CANCEL,
)
from editing_service.store.projects import PROJECT_NOT_FOUND
from editing_service.store.tables import JobRow, utcnow


def backdate_heartbeat(db: Database, job_id: str, seconds: float) -> None:
    with db.session() as session:
        session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_a_job_is_queued_with_its_params(db: Database, project: ProjectRecord) -> None:
    job = enqueue_job(db, project_id=project.id, kind="discover", params={"circuit_top_k": 30})
    assert (job.status, job.step, job.progress, job.attempts, job.worker_id) == ("queued", "", 0.0, 0, None)
    assert job.params == {"circuit_top_k": 30}
    assert not job.cancel_requested and not job.finished
    assert get_job(db, job.id) == job
    assert list_jobs(db, project_id=project.id) == [job]
    assert list_jobs(db, project_id="other") == []
    assert list_jobs(db, status="running") == []


def test_claims_take_the_oldest_queued_job_first(db: Database, project: ProjectRecord) -> None:
    first = enqueue_job(db, project_id=project.id, kind="discover")
    second = enqueue_job(db, project_id=project.id, kind="edit")
    claimed = claim_job(db, worker_id="w1")
    assert claimed is not None and claimed.id == first.id
    assert (claimed.status, claimed.worker_id, claimed.attempts) == ("running", "w1", 1)
    assert claimed.started_at is not None and claimed.heartbeat_at == claimed.started_at
    assert claim_job(db, worker_id="w2").id == second.id  # type: ignore[union-attr]
    assert claim_job(db, worker_id="w3") is None


def test_racing_claimers_never_get_the_same_job(db: Database, db_url: str, project: ProjectRecord) -> None:
    jobs = {enqueue_job(db, project_id=project.id, kind="discover").id for _ in range(20)}
    start = threading.Barrier(8)
    claims: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def claimer(worker_id: str) -> None:
        own = Database(db_url)
        try:
            start.wait()
            while (job := claim_job(own, worker_id=worker_id)) is not None:
                claims.append((job.id, worker_id))
        except BaseException as error:  # noqa: BLE001 (reported by the main thread)
            errors.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=claimer, args=(f"worker-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Counter(job_id for job_id, _ in claims) == Counter(jobs)
    for job_id, worker_id in claims:
        stored = get_job(db, job_id)
        assert (stored.status, stored.worker_id, stored.attempts) == ("running", worker_id, 1)


def test_only_the_owning_worker_reports_progress(db: Database, project: ProjectRecord) -> None:
    enqueue_job(db, project_id=project.id, kind="discover")
    job = claim_job(db, worker_id="owner")
    assert job is not None
    assert report_progress(db, job.id, worker_id="owner", step="training SAEs", fraction=0.25) is False
    assert report_progress(db, job.id, worker_id="intruder", step="hijacked", fraction=0.9) is True
    stored = get_job(db, job.id)
    assert (stored.step, stored.progress) == ("training SAEs", 0.25)
    assert stored.heartbeat_at is not None and stored.heartbeat_at >= job.heartbeat_at  # type: ignore[operator]
    assert heartbeat(db, job.id, worker_id="owner") is False
    assert finish_job(db, job.id, worker_id="intruder", status="succeeded") is False
    assert get_job(db, job.id).status == "running"
    assert finish_job(db, job.id, worker_id="owner", status="succeeded") is True
    done = get_job(db, job.id)
    assert (done.status, done.progress, done.error) == ("succeeded", 1.0, None)
    assert done.finished_at is not None
    # A finished job takes no more reports: the worker is told to stop.
    assert report_progress(db, job.id, worker_id="owner", step="late", fraction=1.0) is True
    assert finish_job(db, job.id, worker_id="owner", status="failed", error="late") is False
    assert get_job(db, job.id).status == "succeeded"


def test_a_worker_can_fail_its_job_with_an_error(db: Database, project: ProjectRecord) -> None:
    enqueue_job(db, project_id=project.id, kind="discover")
    job = claim_job(db, worker_id="w")
    assert job is not None
    assert finish_job(db, job.id, worker_id="w", status="failed", error="CUDA out of memory") is True
    failed = get_job(db, job.id)
    assert (failed.status, failed.error) == ("failed", "CUDA out of memory")


def test_cancelling_a_queued_job_is_immediate(db: Database, project: ProjectRecord) -> None:
    job = enqueue_job(db, project_id=project.id, kind="discover")
    cancelled = request_cancel(db, job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert claim_job(db, worker_id="w") is None


def test_cancelling_a_running_job_asks_its_worker_to_stop(db: Database, project: ProjectRecord) -> None:
    enqueue_job(db, project_id=project.id, kind="discover")
    job = claim_job(db, worker_id="w")
    assert job is not None
    asked = request_cancel(db, job.id)
    assert (asked.status, asked.cancel_requested) == ("running", True)
    assert report_progress(db, job.id, worker_id="w", step="attribution", fraction=0.5) is True
    assert finish_job(db, job.id, worker_id="w", status="cancelled") is True
    assert get_job(db, job.id).status == "cancelled"


def test_a_finished_job_cannot_be_cancelled(db: Database, project: ProjectRecord) -> None:
    enqueue_job(db, project_id=project.id, kind="discover")
    job = claim_job(db, worker_id="w")
    assert job is not None
    finish_job(db, job.id, worker_id="w", status="succeeded")
    with pytest.raises(Conflict) as raised:
        request_cancel(db, job.id)
    assert str(raised.value) == JOB_ALREADY_FINISHED.format(id=job.id, status="succeeded")
    assert str(raised.value) == (
        f"Job {job.id!r} has already finished (succeeded); only queued or running jobs can be cancelled."
    )


def test_a_stale_job_is_requeued_then_failed_after_max_attempts(db: Database, project: ProjectRecord) -> None:
    enqueue_job(db, project_id=project.id, kind="discover")
    lively = enqueue_job(db, project_id=project.id, kind="discover")
    first = claim_job(db, worker_id="lost-1")
    assert first is not None and claim_job(db, worker_id="alive") is not None
    backdate_heartbeat(db, first.id, 600)

    requeued = recover_stale_jobs(db, stale_after=60, max_attempts=2)
    assert [job.id for job in requeued] == [first.id]
    assert (requeued[0].status, requeued[0].worker_id, requeued[0].step) == ("queued", None, REQUEUED_STEP)
    assert get_job(db, lively.id).status == "running"
    # The lost worker, if it comes back, is told to stop and cannot finish the job.
    assert report_progress(db, first.id, worker_id="lost-1", step="x", fraction=0.5) is True
    assert finish_job(db, first.id, worker_id="lost-1", status="succeeded") is False

    second = claim_job(db, worker_id="lost-2")
    assert second is not None and (second.id, second.attempts) == (first.id, 2)
    backdate_heartbeat(db, first.id, 600)
    last_heartbeat = get_job(db, first.id).heartbeat_at
    assert last_heartbeat is not None
    failed = recover_stale_jobs(db, stale_after=60, max_attempts=2)
    assert [job.id for job in failed] == [first.id]
    assert failed[0].status == "failed" and failed[0].finished_at is not None
    assert failed[0].error == WORKER_LOST.format(time=last_heartbeat.isoformat(timespec="seconds"), n=2)
    assert failed[0].error.startswith("The worker running this job stopped responding (last heartbeat 20")
    assert failed[0].error.endswith("); it was tried 2 times.")
    assert recover_stale_jobs(db, stale_after=60, max_attempts=2) == []


def test_a_stale_job_whose_cancel_was_requested_ends_cancelled(db: Database, project: ProjectRecord) -> None:
    enqueue_job(db, project_id=project.id, kind="discover")
    job = claim_job(db, worker_id="w")
    assert job is not None
    request_cancel(db, job.id)
    backdate_heartbeat(db, job.id, 600)
    [recovered] = recover_stale_jobs(db, stale_after=60, max_attempts=3)
    assert recovered.status == "cancelled"
    assert recovered.error is not None
    assert re.fullmatch(re.escape(WORKER_LOST_AFTER_CANCEL).replace(r"\{time\}", ".+"), recovered.error)


def test_a_shutting_down_worker_hands_its_jobs_back(db: Database, project: ProjectRecord) -> None:
    for _ in range(3):
        enqueue_job(db, project_id=project.id, kind="discover")
    mine = [claim_job(db, worker_id="leaving"), claim_job(db, worker_id="leaving")]
    other = claim_job(db, worker_id="staying")
    assert other is not None
    released = release_jobs_of_worker(db, "leaving")
    assert sorted(job.id for job in released) == sorted(job.id for job in mine if job is not None)
    assert {(job.status, job.attempts, job.worker_id, job.step) for job in released} == {
        ("queued", 0, None, RELEASED_STEP)
    }
    assert get_job(db, other.id).status == "running"
    again = claim_job(db, worker_id="next")
    assert again is not None and again.id in {job.id for job in released} and again.attempts == 1


def test_job_errors_say_what_is_wrong(db: Database, project: ProjectRecord) -> None:
    with pytest.raises(NotFound) as raised:
        get_job(db, "nope")
    assert str(raised.value) == JOB_NOT_FOUND.format(id="nope") == "Job 'nope' does not exist."
    with pytest.raises(NotFound) as raised:
        request_cancel(db, "nope")
    assert str(raised.value) == JOB_NOT_FOUND.format(id="nope")
    with pytest.raises(NotFound) as raised:
        enqueue_job(db, project_id="nope", kind="discover")
    assert str(raised.value) == PROJECT_NOT_FOUND.format(id="nope")
    with pytest.raises(Invalid) as raised:
        enqueue_job(db, project_id=project.id, kind="train")
    assert str(raised.value) == INVALID_CHOICE.format(
        what="kind", allowed="'discover', 'edit'", value="train"
    )
    job = enqueue_job(db, project_id=project.id, kind="discover")
    with pytest.raises(
        Invalid, match="status must be one of 'succeeded', 'failed', 'cancelled', not 'running'"
    ):
        finish_job(db, job.id, worker_id="w", status="running")
    for fraction in (1.5, -0.1, float("nan")):
        with pytest.raises(Invalid) as raised:
            report_progress(db, job.id, worker_id="w", step="s", fraction=fraction)
        assert str(raised.value) == INVALID_FRACTION.format(value=fraction)
    with pytest.raises(Invalid) as raised:
        recover_stale_jobs(db, stale_after=-1, max_attempts=1)
    assert str(raised.value) == INVALID_STALE_AFTER.format(value=-1)
    with pytest.raises(Invalid) as raised:
        recover_stale_jobs(db, stale_after=60, max_attempts=0)
    assert str(raised.value) == INVALID_MAX_ATTEMPTS.format(value=0)
