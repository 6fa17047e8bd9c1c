"""Background jobs: a worker that claims queued jobs from the store and runs pipeline steps."""

from editing_service.jobs.runner import JobCancelled, run_job
from editing_service.jobs.worker import JobWorker

__all__ = ["JobCancelled", "JobWorker", "run_job"]
