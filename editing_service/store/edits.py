"""Edits: a snapshot of the flags to apply and the policy that chose them, run by an 'edit' job on the
discovery that was current when the edit was created (recorded with it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.discoveries import check_upload_kept, current_digests, current_row
from editing_service.store.errors import Conflict, Invalid, NotFound
from editing_service.store.events import add_event
from editing_service.store.jobs import add_job
from editing_service.store.projects import require_project
from editing_service.store.quota import JobQuota
from editing_service.store.records import FLAG_SOURCES, FLAG_STATES, EditFolders, EditRecord, JobRecord
from editing_service.store.tables import (
    DiscoveryRow,
    EditRow,
    FlagRow,
    ProjectRow,
    new_id,
    utcnow,
)

EDIT_NOT_FOUND = "Edit {id!r} does not exist in project {project!r}."
EDIT_ID_NOT_FOUND = "Edit {id!r} does not exist."
NOTHING_TO_ABLATE = "No feature is flagged spurious, so an edit of project {project!r} would ablate nothing."
FLAGS_TO_REVIEW = (
    "{n} spurious flag(s) of project {project!r} were made on an SAE that the current discovery replaced "
    "and need review (set them again or clear them) before an edit of the current flags: {ids}."
)
INVALID_EDIT_FLAG = "Flag {index} of the edit is invalid: {problem}"

_FLAG_DEFAULTS = {"rationale": "", "reviewer": "unknown", "source": "person"}
_FLAG_FIELDS = ("site", "feature", "state", *_FLAG_DEFAULTS)


def create_edit(
    db: Database, *, project_id: str, policy: str, flags: Sequence[Mapping[str, Any]] | None = None,
    spurious_only: bool = False, created_by: str | None = None, quota: JobQuota | None = None,
) -> tuple[EditRecord, JobRecord]:
    """Create an edit and its queued 'edit' job (params {"edit_id": ...}) in one transaction, bound to
    the project's current discovery.

    `flags` (dicts with site, feature, state and optionally rationale, reviewer, source) default to the project's flags valid for the current discovery, snapshotted
    now (`spurious_only`: only the spurious ones); Conflict if a spurious flag needs review. At least
    one must be spurious. The edit's artifacts
    go to `<project artifacts_dir>/edits/<edit id>`. With a `quota`, QuotaExceeded when `created_by`
    may create no more jobs now.
    """
    snapshot = None if flags is None else [_checked_flag(index, flag) for index, flag in enumerate(flags)]
    with db.session() as session:
        project = require_project(session, project_id, lock="share")
        check_upload_kept(project)
        if snapshot is None:
            snapshot = [f for f in _current_flags(session, project_id) if f["state"] == "spurious" or not spurious_only]
        if not any(flag["state"] == "spurious" for flag in snapshot):
            raise Invalid(NOTHING_TO_ABLATE.format(project=project_id))
        discovery = current_row(session, project_id)
        edit_id = new_id()
        job = add_job(session, project_id=project_id, kind="edit", params={"edit_id": edit_id},
                      principal=created_by, quota=quota)
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
            discovery_id=discovery.id if discovery is not None else None,
        )
        session.add(edit)
        session.flush()
        if created_by is not None:
            add_event(session, project_id=project_id, action="edit_created", target=edit_id, principal=created_by,
                      detail={"policy": policy, "flags": len(snapshot)})
        return edit.record(), job.record()


def get_edit(db: Database, project_id: str, edit_id: str) -> EditRecord:
    with db.session(readonly=True) as session:
        row = session.get(EditRow, edit_id)
        if row is None or row.project_id != project_id:
            raise NotFound(EDIT_NOT_FOUND.format(id=edit_id, project=project_id))
        return row.record()


def get_edit_folders(db: Database, project_id: str, edit_id: str) -> EditFolders:
    """The edit's status, output folder and discovery folder in one query that leaves the flags unread."""
    with db.session(readonly=True) as session:
        row = session.execute(
            select(EditRow.status, EditRow.out_dir,
                   func.coalesce(DiscoveryRow.artifacts_dir, ProjectRow.artifacts_dir).label("discovery_dir"))
            .join(ProjectRow, ProjectRow.id == EditRow.project_id)
            .outerjoin(DiscoveryRow, DiscoveryRow.id == EditRow.discovery_id)
            .where(EditRow.id == edit_id, EditRow.project_id == project_id, ProjectRow.deleted_at.is_(None))
        ).one_or_none()
    if row is None:
        raise NotFound(EDIT_NOT_FOUND.format(id=edit_id, project=project_id))
    return EditFolders(status=row.status, out_dir=Path(row.out_dir), discovery_dir=Path(row.discovery_dir))


def edit_discovery_dir(db: Database, edit: EditRecord) -> Path:
    """The folder of the discovery an edit was made on."""
    return get_edit_folders(db, edit.project_id, edit.id).discovery_dir


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
    digests = current_digests(session, project_id)
    rows = session.scalars(
        select(FlagRow).where(FlagRow.project_id == project_id).order_by(FlagRow.site, FlagRow.feature)
    )
    flags = [row.record(digests) for row in rows]
    stale = [f"{f.site}/{f.feature}" for f in flags if not f.current and f.state == "spurious"]
    if stale:
        raise Conflict(FLAGS_TO_REVIEW.format(n=len(stale), project=project_id, ids=", ".join(stale[:20])))
    return [flag.snapshot() for flag in flags if flag.current]


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
