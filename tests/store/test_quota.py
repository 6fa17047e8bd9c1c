"""The job quota per principal, counted by the database (SQLite and PostgreSQL): a sliding window of
created jobs, per principal; a creation that fails is not counted, and jobs without a quota are."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from editing_service.store import (
    Conflict,
    Database,
    JobQuota,
    QuotaExceeded,
    create_project,
    enqueue_job,
    start_discovery,
)
from editing_service.store.tables import JobRow


def _projects(db: Database, root: Path, count: int) -> list[str]:
    return [create_project(db, name=f"p{i}", model_ref=None, spec_ref="biasbios_surgeon_nurse",
                           artifacts_root=root).id for i in range(count)]


def test_the_window_slides_per_principal_and_failures_are_not_counted(db: Database, tmp_path: Path) -> None:
    quota = JobQuota(limit=2, window_s=60.0)
    first, second, third, fourth = _projects(db, tmp_path, 4)
    _, oldest = start_discovery(db, project_id=first, principal="ana", quota=quota)
    with pytest.raises(Conflict):  # fails after its job was added: rolled back, not counted
        start_discovery(db, project_id=first, principal="ana", quota=quota)
    enqueue_job(db, project_id=second, kind="edit")  # no principal: not counted
    start_discovery(db, project_id=second, principal="ana", quota=quota)
    with pytest.raises(QuotaExceeded) as refused:
        start_discovery(db, project_id=third, principal="ana", quota=quota)
    assert 58 <= refused.value.retry_after <= 60
    assert "'ana' has created 2 jobs in the last 60 s" in str(refused.value)
    start_discovery(db, project_id=third, principal="ben", quota=quota)  # another principal, its own count

    with db.session() as session:  # the oldest job leaves the window
        session.execute(update(JobRow).where(JobRow.id == oldest.id)
                        .values(created_at=oldest.created_at - timedelta(seconds=61)))
    start_discovery(db, project_id=fourth, principal="ana", quota=quota)
