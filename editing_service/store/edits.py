"""Edits: a snapshot of the flags to apply and the policy that chose them, run by an 'edit' job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import Invalid, NotFound
from editing_service.store.events import record_event
from editing_service.store.jobs import add_job
from editing_service.store.projects import require_project
from editing_service.store.records import FLAG_SOURCES, FLAG_STATES, EditFolders, EditRecord, JobRecord
from editing_service.store.tables import EditRow, FlagRow, ProjectRow, new_id, utcnow

EDIT_NOT_FOUND = "Edit {id!r} does not exist in project {project!r}."
EDIT_ID_NOT_FOUND = "Edit {id!r} does not exist."
NOTHING_TO_ABLATE = "No feature is flagged spurious, so an edit of project {project!r} would ablate nothing."
INVALID_EDIT_FLAG = "Flag {index} of the edit is invalid: {problem}"

_FLAG_DEFAULTS = {"rationale": "", "reviewer": "unknown", "source": "person"}
_FLAG_FIELDS = ("site", "feature", "state", *_FLAG_DEFAULTS)


def create_edit(
    db: Database,
    *,
    project_id: str,
    policy: str,
    flags: Sequence[Mapping[str, Any]] | None = None,
    created_by: str | None = None,
) -> tuple[EditRecord, JobRecord]:
    """Create an edit and its queued 'edit' job (params {"edit_id": ...}) in one transaction.

    `flags` (dicts with site, feature, state and optionally rationale, reviewer, source) default to the
    project's current flags, snapshotted now. At least one must be spurious. The edit's artifacts go to
    `<project artifacts_dir>/edits/<edit id>`.
    """
    snapshot = None if flags is None else [_checked_flag(index, flag) for index, flag in enumerate(flags)]
    with db.session() as session:
        project = require_project(session, project_id)
        if snapshot is None:
            snapshot = _current_flags(session, project_id)
        if not any(flag["state"] == "spurious" for flag in snapshot):
            raise Invalid(NOTHING_TO_ABLATE.format(project=project_id))
        edit_id = new_id()
        job = add_job(session, project_id=project_id, kind="edit", params={"edit_id": edit_id})
        edit = EditRow(
            id=edit_id,
            project_id=project_id,
            job_id=job.id,
            flags=snapshot,
            policy=policy,
            status=job.status,
            out_dir=str(Path(project.artifacts_dir) / "edits" / edit_id),
            summary=None,
            created_at=utcnow(),
        )
        session.add(edit)
        session.flush()
        if created_by is not None:
            record_event(session, action="edit_created", principal=created_by, project_id=project_id,
                         subject=edit_id, rationale=policy)
        return edit.record(), job.record()


def get_edit(db: Database, project_id: str, edit_id: str) -> EditRecord:
    with db.session(readonly=True) as session:
        row = session.get(EditRow, edit_id)
        if row is None or row.project_id != project_id:
            raise NotFound(EDIT_NOT_FOUND.format(id=edit_id, project=project_id))
        return row.record()


def get_edit_folders(db: Database, project_id: str, edit_id: str) -> EditFolders:
    """The edit's status, output folder and project folder in one query that leaves the flags unread."""
    with db.session(readonly=True) as session:
        row = session.execute(
            select(EditRow.status, EditRow.out_dir, ProjectRow.artifacts_dir)
            .join(ProjectRow, ProjectRow.id == EditRow.project_id)
            .where(EditRow.id == edit_id, EditRow.project_id == project_id)
        ).one_or_none()
    if row is None:
        raise NotFound(EDIT_NOT_FOUND.format(id=edit_id, project=project_id))
    return EditFolders(status=row.status, out_dir=Path(row.out_dir), project_dir=Path(row.artifacts_dir))


def list_edits(db: Database, project_id: str) -> list[EditRecord]:
    """The project's edits, newest first."""
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        rows = session.scalars(
            select(EditRow)
            .where(EditRow.project_id == project_id)
            .order_by(EditRow.created_at.desc(), EditRow.id)
        )
        return [row.record() for row in rows]


def set_edit_summary(db: Database, edit_id: str, summary: Mapping[str, Any]) -> EditRecord:
    """Store the headline figures of an edit's report."""
    with db.session() as session:
        result = session.execute(
            update(EditRow)
            .where(EditRow.id == edit_id)
            .values(summary=dict(summary))
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(EDIT_ID_NOT_FOUND.format(id=edit_id))
        row = session.get(EditRow, edit_id, populate_existing=True)
        assert row is not None
        return row.record()


def _current_flags(session: Session, project_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(FlagRow).where(FlagRow.project_id == project_id).order_by(FlagRow.site, FlagRow.feature)
    )
    return [row.record().snapshot() for row in rows]


def _checked_flag(index: int, flag: Mapping[str, Any]) -> dict[str, Any]:
    def invalid(problem: str) -> Invalid:
        return Invalid(INVALID_EDIT_FLAG.format(index=index, problem=problem))

    unknown = sorted(set(flag) - set(_FLAG_FIELDS))
    if unknown:
        raise invalid(f"unknown fields {unknown}; the fields are {list(_FLAG_FIELDS)}.")
    checked = {**_FLAG_DEFAULTS, **flag}
    if not isinstance(checked.get("site"), str) or not checked["site"]:
        raise invalid("'site' must be a non-empty string.")
    feature = checked.get("feature")
    if isinstance(feature, bool) or not isinstance(feature, int) or feature < 0:
        raise invalid(f"'feature' must be a non-negative integer, not {feature!r}.")
    if checked.get("state") not in FLAG_STATES:
        raise invalid(f"'state' must be one of {list(FLAG_STATES)}, not {checked.get('state')!r}.")
    if checked["source"] not in FLAG_SOURCES:
        raise invalid(f"'source' must be one of {list(FLAG_SOURCES)}, not {checked['source']!r}.")
    return {field: checked[field] for field in _FLAG_FIELDS}
