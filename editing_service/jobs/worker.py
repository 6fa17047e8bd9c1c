"""The job worker: a thread that claims queued jobs from the database and runs them one at a time.

Claims are compare-and-set updates in the database, so any number of replicas sharing one PostgreSQL
can each run a worker. While a job runs, a heartbeat thread keeps its `heartbeat_at` fresh; a job
whose heartbeat stops (the process died) is requeued by whichever worker notices, or failed after
`job_max_attempts`. Progress reports double as cancellation checks, and as the point where a worker
that is shutting down hands its job back to the queue (that attempt not counted). Every
`SWEEP_EVERY_S` it also removes the artifacts that retention lets go (see retention.py).

A job's error is recorded as its users read it (GET /v1/jobs/{id}): with every server path shown
relative to the service home, never absolute. The server log keeps the full traceback.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable

from editing_service.config import ServiceConfig
from editing_service.jobs.retention import sweep_artifacts
from editing_service.jobs.runner import JobCancelled, run_job
from editing_service.shown_paths import redact
from editing_service.store import (
    Database,
    JobRecord,
    claim_job,
    finish_job,
    heartbeat,
    recover_stale_jobs,
    release_jobs_of_worker,
    report_progress,
)

logger = logging.getLogger(__name__)

Runner = Callable[[Database, ServiceConfig, JobRecord, Callable[[str, float], None]], None]
PROGRESS_EVERY_S = 0.5
SWEEP_EVERY_S = 60.0


class WorkerStopping(Exception):
    """Raised from a progress report once the worker has been asked to stop."""


class JobWorker:
    """Claims and runs jobs until `stop()`; `run_job` is replaceable for tests."""

    def __init__(self, db: Database, config: ServiceConfig, *, runner: Runner = run_job) -> None:
        self.db, self.config, self.runner = db, config, runner
        self.worker_id = f"{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0

    def start(self) -> JobWorker:
        self._thread = threading.Thread(target=self._loop, name=f"job-worker-{self.worker_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop claiming; a running job is handed back at its next progress report, or after `timeout`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for job in release_jobs_of_worker(self.db, self.worker_id):
            logger.warning("Job %s handed back to the queue at shutdown", job.id)

    def run_once(self) -> JobRecord | None:
        """Recover lost jobs, sweep artifacts when it is time, then claim and run one queued job if there
        is one; returns it."""
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            sweep_artifacts(self.db, retention_hours=self.config.failed_artifacts_retention_hours)
        for job in recover_stale_jobs(self.db, stale_after=self.config.job_stale_seconds,
                                      max_attempts=self.config.job_max_attempts):
            logger.warning("Job %s lost its worker: now %s", job.id, job.status)
        job = claim_job(self.db, worker_id=self.worker_id)
        if job is not None:
            self._run(job)
        return job

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.run_once()
            except Exception:  # a database outage must not kill the worker thread
                logger.exception("Job worker %s: claiming failed; retrying", self.worker_id)
                job = None
            if job is None:
                self._stop.wait(self.config.worker_poll_seconds)

    def _run(self, job: JobRecord) -> None:
        logger.info("Worker %s runs %s job %s (attempt %d)", self.worker_id, job.kind, job.id, job.attempts)
        beating = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job.id, beating), daemon=True)
        beat.start()
        last = {"at": 0.0, "step": ""}

        def progress(step: str, fraction: float) -> None:
            now = time.monotonic()
            if step == last["step"] and now - last["at"] < PROGRESS_EVERY_S and fraction < 1.0:
                return
            last.update(at=now, step=step)
            if self._stop.is_set():
                raise WorkerStopping
            if report_progress(self.db, job.id, worker_id=self.worker_id, step=step, fraction=fraction):
                raise JobCancelled(f"Job {job.id!r} was cancelled during step {step!r}.")

        try:
            self.runner(self.db, self.config, job, progress)
        except WorkerStopping:
            release_jobs_of_worker(self.db, self.worker_id)
        except JobCancelled as err:
            self._finish(job, "cancelled", str(err))
        except Exception as err:
            logger.error("Job %s failed:\n%s", job.id, traceback.format_exc())
            self._finish(job, "failed", _message(err))
        else:
            self._finish(job, "succeeded", None)
        finally:
            beating.set()
            beat.join()

    def _finish(self, job: JobRecord, status: str, error: str | None) -> None:
        """Record how the job ended; its error shows server paths relative to the service home."""
        shown_error = None if error is None else redact(error, self.config.home)
        finish_job(self.db, job.id, worker_id=self.worker_id, status=status, error=shown_error)

    def _beat(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self.config.heartbeat_seconds):
            try:
                heartbeat(self.db, job_id, worker_id=self.worker_id)
            except Exception:
                logger.exception("Heartbeat of job %s failed", job_id)


def _message(err: BaseException) -> str:
    """A job's error as a person reads it: the exception's own message, with its type if it has none."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
