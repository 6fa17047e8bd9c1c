"""Deleting projects, edits and uploaded data, and finding artifacts that retention lets go.

The store removes rows and says which folders to remove; the caller removes the files after the
transaction commits (a crash in between leaves folders that `leftover_folders` lists again). Audit
entries and events are kept: a deleted project stays as a tombstone row (deleted_at, deleted_by), so
its audit log and events stay readable, and every deletion is itself an event.
Nothing is deleted while a job of it is queued or running (Conflict: cancel the job first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import Conflict, NotFound
from editing_service.store.events import add_event
from editing_service.store.projects import require_project
from editing_service.store.records import ACTIVE_STATUSES, FINISHED_STATUSES, ProjectRecord
from editing_service.store.tables import (
    DiscoveryRow,
    EditRow,
    FeatureRow,
    FlagRow,
    JobRow,
    ProjectRow,
    utcnow,
)

PROJECT_BUSY = "Project {project!r} has {n} queued or running job(s) ({jobs}); cancel them before deleting it."
EDIT_BUSY = "Edit {edit!r} is {status}; cancel its job {job!r} before deleting it."
EDIT_NOT_FOUND = "Edit {id!r} does not exist in project {project!r}."
NO_UPLOAD = "Project {project!r} was not created from an uploaded data file."
UPLOAD_GONE = "The uploaded data of project {project!r} was already deleted."
FAILED_STATUSES = tuple(s for s in FINISHED_STATUSES if s != "succeeded")


@dataclass(frozen=True, slots=True)
class ExpiredArtifacts:
    """The folder of a failed or cancelled discovery or edit whose retention has passed."""

    kind: str  # "discovery" or "edit"
    id: str
    folder: Path


def delete_project(db: Database, project_id: str, *, principal: str) -> ProjectRecord:
    """Delete a project's jobs, discoveries, features, flags and edits; keep it as a tombstone with its
    audit log and events. Returns it: the caller removes `artifacts_dir` and `upload_dir`."""
    with db.session() as session:
        row = require_project(session, project_id, lock="update")
        _refuse_if_busy(session, project_id)
        for table in (EditRow, DiscoveryRow, FeatureRow, FlagRow, JobRow):
            session.execute(delete(table).where(table.project_id == project_id))
        row.deleted_at, row.deleted_by = utcnow(), principal
        add_event(session, project_id=project_id, action="project_deleted", target=project_id, principal=principal,
                  detail={"name": row.name})
        session.flush()
        return row.record()


def delete_edit(db: Database, project_id: str, edit_id: str, *, principal: str) -> Path:
    """Delete a finished edit and its job; returns its folder for the caller to remove."""
    with db.session() as session:
        require_project(session, project_id, lock="update")
        edit = session.get(EditRow, edit_id, with_for_update=True)
        if edit is None or edit.project_id != project_id:
            raise NotFound(EDIT_NOT_FOUND.format(id=edit_id, project=project_id))
        if edit.status in ACTIVE_STATUSES:
            raise Conflict(EDIT_BUSY.format(edit=edit_id, status=edit.status, job=edit.job_id))
        session.execute(delete(EditRow).where(EditRow.id == edit_id))
        session.execute(delete(JobRow).where(JobRow.id == edit.job_id))
        add_event(session, project_id=project_id, action="edit_deleted", target=edit_id, principal=principal,
                  detail={"status": edit.status, "flags": len(edit.flags or [])})
        return Path(edit.out_dir)


def delete_upload(db: Database, project_id: str, *, principal: str) -> Path:
    """Mark a project's uploaded data deleted (its discoveries and edits stay; it can no longer be
    discovered or edited); returns the folder for the caller to remove."""
    with db.session() as session:
        row = require_project(session, project_id, lock="update")
        if row.upload_dir is None:
            raise NotFound(NO_UPLOAD.format(project=project_id))
        if row.upload_removed_at is not None:
            raise NotFound(UPLOAD_GONE.format(project=project_id))
        _refuse_if_busy(session, project_id)
        row.upload_removed_at = utcnow()
        add_event(session, project_id=project_id, action="upload_deleted", target=Path(row.upload_dir).name,
                  principal=principal)
        return Path(row.upload_dir)


def expired_artifacts(db: Database, *, finished_before: datetime) -> list[ExpiredArtifacts]:
    """Folders of discoveries and edits that failed or were cancelled before `finished_before` and
    still have their artifacts."""
    with db.session(readonly=True) as session:
        discoveries = session.execute(
            select(DiscoveryRow.id, DiscoveryRow.artifacts_dir).where(
                DiscoveryRow.status.in_(FAILED_STATUSES), DiscoveryRow.finished_at < finished_before,
                DiscoveryRow.artifacts_removed_at.is_(None))
        ).all()
        edits = session.execute(
            select(EditRow.id, EditRow.out_dir).join(JobRow, JobRow.id == EditRow.job_id).where(
                EditRow.status.in_(FAILED_STATUSES), JobRow.finished_at < finished_before,
                EditRow.artifacts_removed_at.is_(None))
        ).all()
    return [ExpiredArtifacts("discovery", i, Path(d)) for i, d in discoveries] + [
        ExpiredArtifacts("edit", i, Path(d)) for i, d in edits]


def mark_artifacts_removed(db: Database, expired: ExpiredArtifacts) -> None:
    table = DiscoveryRow if expired.kind == "discovery" else EditRow
    with db.session() as session:
        session.execute(update(table).where(table.id == expired.id).values(artifacts_removed_at=utcnow())
                        .execution_options(synchronize_session=False))


def leftover_folders(db: Database) -> list[Path]:
    """Folders of deleted projects and deleted uploads (removed after their deletion committed; listed
    here so that a crash in between leaves nothing for good). The caller skips those already gone."""
    with db.session(readonly=True) as session:
        deleted = session.execute(
            select(ProjectRow.artifacts_dir, ProjectRow.upload_dir).where(ProjectRow.deleted_at.is_not(None))
        ).all()
        uploads = session.scalars(
            select(ProjectRow.upload_dir).where(ProjectRow.upload_removed_at.is_not(None))
        ).all()
    folders = [Path(a) for a, _ in deleted] + [Path(u) for _, u in deleted if u] + [Path(u) for u in uploads if u]
    return folders


def _refuse_if_busy(session: Session, project_id: str) -> None:
    busy = session.scalars(
        select(JobRow.id).where(JobRow.project_id == project_id, JobRow.status.in_(ACTIVE_STATUSES))
    ).all()
    if busy:
        raise Conflict(PROJECT_BUSY.format(project=project_id, n=len(busy), jobs=", ".join(busy)))
