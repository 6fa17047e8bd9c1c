"""Deleting projects, edits and uploads (never while a job runs; audit entries and events kept), and the
retention sweep of failed jobs' artifacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from editing_service.jobs.retention import sweep_artifacts
from editing_service.store import (
    Conflict,
    Database,
    NotFound,
    ProjectRecord,
    audit_log,
    claim_job,
    create_edit,
    create_project,
    delete_edit,
    delete_project,
    delete_upload,
    finish_job,
    get_discovery,
    list_events,
    list_jobs,
    list_projects,
    replace_features,
    request_cancel,
    set_flag,
    start_discovery,
)
from editing_service.store.deletion import EDIT_BUSY, NO_UPLOAD, PROJECT_BUSY
from editing_service.store.discoveries import UPLOAD_REMOVED

SPURIOUS = {"site": "blocks.0.out", "feature": 7, "state": "spurious"}


def _flagged(db: Database, project: ProjectRecord) -> None:
    replace_features(db, project.id, [{"site": "blocks.0.out", "feature": 7, "score": 1.0, "rank": 1}])
    set_flag(db, project_id=project.id, site="blocks.0.out", feature=7, state="spurious", rationale="r",
             reviewer="Ana", principal="ana")


def test_a_project_is_deleted_only_when_no_job_runs(db: Database, project: ProjectRecord) -> None:
    _flagged(db, project)
    _, job = start_discovery(db, project_id=project.id)
    claim_job(db, worker_id="w")
    with pytest.raises(Conflict) as refused:
        delete_project(db, project.id, principal="ana")
    assert str(refused.value) == PROJECT_BUSY.format(project=project.id, n=1, jobs=job.id)
    request_cancel(db, job.id)
    finish_job(db, job.id, worker_id="w", status="cancelled")
    deleted = delete_project(db, project.id, principal="ben")
    assert deleted.deleted_at is not None and deleted.artifacts_dir == project.artifacts_dir
    with pytest.raises(NotFound, match="was deleted"):
        start_discovery(db, project_id=project.id)
    assert list_jobs(db, project_id=project.id) == []
    assert project.id not in {p.id for p in list_projects(db)[0]}
    assert [e.action for e in audit_log(db, project.id)] == ["set"]
    [event] = list_events(db, project.id)
    assert (event.action, event.target, event.principal) == ("project_deleted", project.id, "ben")


def test_an_edit_is_deleted_once_finished(db: Database, project: ProjectRecord) -> None:
    edit, job = create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS])
    with pytest.raises(Conflict) as refused:
        delete_edit(db, project.id, edit.id, principal="ana")
    assert str(refused.value) == EDIT_BUSY.format(edit=edit.id, status="queued", job=job.id)
    request_cancel(db, job.id)
    assert delete_edit(db, project.id, edit.id, principal="ana") == edit.out_dir
    with pytest.raises(NotFound):
        delete_edit(db, project.id, edit.id, principal="ana")
    assert list_jobs(db, project_id=project.id) == []
    assert [(e.action, e.target) for e in list_events(db, project.id)] == [("edit_deleted", edit.id)]


def test_an_upload_is_deleted_and_the_project_can_no_longer_run_jobs(db: Database, tmp_path: Path) -> None:
    plain = create_project(db, name="p", model_ref=None, spec_ref="s", artifacts_root=tmp_path)
    with pytest.raises(NotFound) as refused:
        delete_upload(db, plain.id, principal="ana")
    assert str(refused.value) == NO_UPLOAD.format(project=plain.id)
    uploaded = create_project(db, name="u", model_ref=None, spec_ref="s", artifacts_root=tmp_path,
                              upload_dir=tmp_path / "uploads" / "x")
    _flagged(db, uploaded)
    assert delete_upload(db, uploaded.id, principal="ana") == tmp_path / "uploads" / "x"
    for refused_call in (lambda: start_discovery(db, project_id=uploaded.id),
                         lambda: create_edit(db, project_id=uploaded.id, policy="p")):
        with pytest.raises(Conflict) as refused:
            refused_call()
        assert str(refused.value) == UPLOAD_REMOVED.format(project=uploaded.id)
    assert [e.action for e in list_events(db, uploaded.id)] == ["upload_deleted"]


def test_the_sweep_removes_failed_artifacts_after_their_retention(db: Database, project: ProjectRecord) -> None:
    failed, job = start_discovery(db, project_id=project.id)
    claim_job(db, worker_id="w")
    finish_job(db, job.id, worker_id="w", status="failed", error="boom")
    edit, edit_job = create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS])
    request_cancel(db, edit_job.id)
    kept = project.artifacts_dir / "discoveries" / "kept"
    for folder in (failed.artifacts_dir, edit.out_dir, kept):
        folder.mkdir(parents=True)
        (folder / "file").write_text("x")
    assert sweep_artifacts(db, retention_hours=1) == 0
    assert failed.artifacts_dir.exists() and edit.out_dir.exists()
    later = datetime.now(UTC) + timedelta(hours=2)
    assert sweep_artifacts(db, retention_hours=1, now=later) == 2
    assert not failed.artifacts_dir.exists() and not edit.out_dir.exists() and kept.exists()
    assert get_discovery(db, project.id, failed.id).artifacts_removed_at is not None
    assert sweep_artifacts(db, retention_hours=1, now=later) == 0


def test_the_sweep_removes_what_a_crash_left_of_a_deleted_project(db: Database, project: ProjectRecord) -> None:
    delete_project(db, project.id, principal="ana")  # the route removes the folder next; say it died first
    (project.artifacts_dir / "models").mkdir(parents=True)
    assert sweep_artifacts(db, retention_hours=1) == 1 and not project.artifacts_dir.exists()
