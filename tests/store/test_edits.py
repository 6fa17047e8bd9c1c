"""Edits: created with their job in one go, flags snapshotted, status kept in step with the job."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from editing_service.store import (
    Database,
    EditFolders,
    Invalid,
    NotFound,
    ProjectRecord,
    claim_job,
    create_edit,
    finish_job,
    get_edit,
    get_edit_folders,
    get_job,
    list_edits,
    recover_stale_jobs,
    request_cancel,
    set_edit_summary,
    set_flag,
)
from editing_service.store.edits import (
    EDIT_ID_NOT_FOUND,
    EDIT_NOT_FOUND,
    INVALID_EDIT_FLAG,
    NOTHING_TO_ABLATE,
)
from editing_service.store.projects import PROJECT_NOT_FOUND
from editing_service.store.tables import JobRow, utcnow

Rows = Callable[..., list[dict[str, Any]]]
SPURIOUS = {
    "site": "blocks.0.out",
    "feature": 103,
    "state": "spurious",
    "rationale": "she/her",
    "reviewer": "ana",
}


def test_an_edit_is_created_with_its_queued_job(db: Database, project: ProjectRecord) -> None:
    edit, job = create_edit(db, project_id=project.id, policy="Reviewed by ana", flags=[SPURIOUS])
    assert (job.kind, job.status, job.params, job.project_id) == (
        "edit",
        "queued",
        {"edit_id": edit.id},
        project.id,
    )
    assert (edit.job_id, edit.status, edit.policy, edit.summary) == (
        job.id,
        "queued",
        "Reviewed by ana",
        None,
    )
    assert edit.flags == [{**SPURIOUS, "source": "person"}]
    assert edit.out_dir == project.artifacts_dir / "edits" / edit.id
    assert get_edit(db, project.id, edit.id) == edit
    assert get_job(db, job.id) == job
    assert get_edit_folders(db, project.id, edit.id) == EditFolders(
        status="queued", out_dir=edit.out_dir, discovery_dir=project.artifacts_dir
    )


def test_an_edit_snapshots_the_current_flags_by_default(
    db: Database, project: ProjectRecord, with_features: Rows
) -> None:
    with_features()
    for feature, state in ((104, "task_relevant"), (103, "spurious")):
        set_flag(
            db,
            project_id=project.id,
            site="blocks.0.out",
            feature=feature,
            state=state,
            rationale="r",
            reviewer="ana",
            principal="token-ana",
        )
    edit, _ = create_edit(db, project_id=project.id, policy="Reviewed by ana")
    assert [(f["feature"], f["state"]) for f in edit.flags] == [(103, "spurious"), (104, "task_relevant")]
    set_flag(
        db,
        project_id=project.id,
        site="blocks.0.out",
        feature=103,
        state="task_relevant",
        rationale="changed my mind",
        reviewer="ana",
        principal="token-ana",
    )
    assert get_edit(db, project.id, edit.id).flags == edit.flags


def test_an_edit_follows_its_job(db: Database, project: ProjectRecord) -> None:
    def status(edit_id: str) -> str:
        return get_edit(db, project.id, edit_id).status

    done, _ = create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS])
    lost, _ = create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS])
    dropped, dropped_job = create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS])
    request_cancel(db, dropped_job.id)
    assert status(dropped.id) == "cancelled"

    first = claim_job(db, worker_id="w")
    second = claim_job(db, worker_id="w")
    assert first is not None and second is not None
    assert status(done.id) == status(lost.id) == "running"
    finish_job(db, first.id, worker_id="w", status="succeeded")
    assert status(done.id) == "succeeded"
    with db.session() as session:
        session.execute(
            update(JobRow).where(JobRow.id == second.id).values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    recover_stale_jobs(db, stale_after=60, max_attempts=5)
    assert status(lost.id) == "queued"


def test_edits_are_listed_newest_first_and_get_their_summary(db: Database, project: ProjectRecord) -> None:
    older, _ = create_edit(db, project_id=project.id, policy="first", flags=[SPURIOUS])
    newer, _ = create_edit(db, project_id=project.id, policy="second", flags=[SPURIOUS])
    assert [e.id for e in list_edits(db, project.id)] == [newer.id, older.id]
    summary = {"group_balanced_accuracy": 0.89, "worst_group_accuracy": 0.81}
    assert set_edit_summary(db, older.id, summary).summary == summary
    assert get_edit(db, project.id, older.id).summary == summary


def test_edit_errors_say_what_is_wrong(db: Database, project: ProjectRecord, tmp_path: Any) -> None:
    with pytest.raises(NotFound) as raised:
        get_edit(db, project.id, "nope")
    assert str(raised.value) == EDIT_NOT_FOUND.format(id="nope", project=project.id)
    assert str(raised.value) == f"Edit 'nope' does not exist in project {project.id!r}."
    edit, _ = create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS])
    with pytest.raises(NotFound, match=re.escape(EDIT_NOT_FOUND.format(id=edit.id, project="other"))):
        get_edit(db, "other", edit.id)
    for project_id, edit_id in (("other", edit.id), (project.id, "nope")):
        with pytest.raises(NotFound, match=re.escape(EDIT_NOT_FOUND.format(id=edit_id, project=project_id))):
            get_edit_folders(db, project_id, edit_id)
    with pytest.raises(NotFound, match=re.escape(EDIT_ID_NOT_FOUND.format(id="nope"))):
        set_edit_summary(db, "nope", {})
    with pytest.raises(NotFound, match=re.escape(PROJECT_NOT_FOUND.format(id="nope"))):
        create_edit(db, project_id="nope", policy="p", flags=[SPURIOUS])
    with pytest.raises(Invalid) as raised:
        create_edit(db, project_id=project.id, policy="p")
    assert str(raised.value) == NOTHING_TO_ABLATE.format(project=project.id)
    with pytest.raises(Invalid, match=re.escape(NOTHING_TO_ABLATE.format(project=project.id))):
        create_edit(db, project_id=project.id, policy="p", flags=[{**SPURIOUS, "state": "task_relevant"}])
    with pytest.raises(Invalid) as raised:
        create_edit(db, project_id=project.id, policy="p", flags=[SPURIOUS, {**SPURIOUS, "feature": -1}])
    assert str(raised.value) == INVALID_EDIT_FLAG.format(
        index=1, problem="'feature' must be a non-negative integer, not -1."
    )
    with pytest.raises(Invalid, match=re.escape("Flag 0 of the edit is invalid: unknown fields ['colour']")):
        create_edit(db, project_id=project.id, policy="p", flags=[{**SPURIOUS, "colour": "red"}])
    assert len(list_edits(db, project.id)) == 1
