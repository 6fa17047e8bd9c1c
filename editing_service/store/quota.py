"""The job quota per principal, kept by the database so that every replica sharing it enforces one
limit: at most `limit` jobs created by one principal in any `window_s` seconds.

The check runs in the transaction that inserts the job, after taking a lock per principal (on
PostgreSQL a transaction-level advisory lock; on SQLite the write lock every writing transaction
already holds), so two requests, on one replica or on two, cannot both count the same jobs and pass
the limit together. A creation that fails rolls back with its job, so only created jobs count.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from editing_service.store.errors import StoreError
from editing_service.store.tables import JobRow, utcnow

TOO_MANY_JOBS = (
    "{principal!r} has created {count} jobs in the last {window:g} s, the most allowed "
    "(EDITING_SERVICE_JOBS_PER_PRINCIPAL); try again in {wait} s."
)


class QuotaExceeded(StoreError):
    """A principal's quota is spent; `retry_after` is the number of seconds until it is not."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class JobQuota:
    """At most `limit` jobs per principal in any `window_s` seconds."""

    limit: int
    window_s: float


def check_job_quota(session: Session, principal: str, quota: JobQuota) -> None:
    """Raise QuotaExceeded if `principal` may create no more jobs now; holds the principal's lock until
    the session's transaction ends, so the job inserted next in it is counted by every later check."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(principal)})
    now = utcnow()
    count, oldest = session.execute(
        select(func.count(), func.min(JobRow.created_at))
        .where(JobRow.principal == principal, JobRow.created_at > now - timedelta(seconds=quota.window_s))
    ).one()
    if count >= quota.limit:
        wait = max(1, math.ceil((oldest - now).total_seconds() + quota.window_s))
        raise QuotaExceeded(TOO_MANY_JOBS.format(principal=principal, count=count, window=quota.window_s,
                                                 wait=wait), wait)


def _lock_key(principal: str) -> int:
    """A signed 64-bit advisory-lock key of the principal's quota."""
    digest = hashlib.sha256(f"job-quota:{principal}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
