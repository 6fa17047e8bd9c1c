"""Projects: a classifier, a dataset spec and settings, with a directory for their artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

# A module reference: events.py reads projects through this module (an import cycle otherwise).
from editing_service.store import events as event_store
from editing_service.store.database import Database
from editing_service.store.errors import Invalid, NotFound
from editing_service.store.paging import check_paging
from editing_service.store.records import ProjectRecord
from editing_service.store.tables import NAME_LENGTH, MemberRow, ProjectRow, new_id

PROJECT_NOT_FOUND = "Project {id!r} does not exist."
PROJECT_DELETED = "Project {id!r} was deleted at {at}."
EMPTY_NAME = "A project needs a non-empty name."
NAME_TOO_LONG = "A project name has at most {max} characters, not {length}."
EMPTY_SPEC = "A project needs a dataset spec (a shipped spec name or a path)."


def create_project(
    db: Database,
    *,
    name: str,
    model_ref: str | None,
    spec_ref: str,
    settings: dict[str, Any] | None = None,
    artifacts_root: Path,
    upload_dir: Path | None = None,
    created_by: str | None = None,
) -> ProjectRecord:
    """Create a project; its artifacts go to `artifacts_root/projects/<id>` (the caller creates it).

    `model_ref` None means the embedded default classifier; `upload_dir` is the folder of its uploaded
    data file, if it came with one (removed with the project, or alone by `delete_upload`). The creation
    is an event of `created_by` (the principal) when given.
    """
    if not name.strip():
        raise Invalid(EMPTY_NAME)
    if len(name) > NAME_LENGTH:
        raise Invalid(NAME_TOO_LONG.format(max=NAME_LENGTH, length=len(name)))
    if not spec_ref.strip():
        raise Invalid(EMPTY_SPEC)
    project_id = new_id()
    row = ProjectRow(
        id=project_id,
        name=name,
        model_ref=model_ref,
        spec_ref=spec_ref,
        settings=dict(settings or {}),
        artifacts_dir=str(Path(artifacts_root) / "projects" / project_id),
        upload_dir=str(upload_dir) if upload_dir is not None else None,
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        if created_by is not None:
            event_store.add_event(session, project_id=project_id, action="project_created", target=project_id,
                      principal=created_by, detail={"name": name})
        return row.record()


def get_project(db: Database, project_id: str) -> ProjectRecord:
    with db.session(readonly=True) as session:
        return require_project(session, project_id).record()


def list_projects(
    db: Database, *, limit: int = 50, offset: int = 0, member: str | None = None
) -> tuple[list[ProjectRecord], int]:
    """One page of projects (deleted ones left out), newest first, and the number of projects; only those
    `member` belongs to when it is given."""
    check_paging(limit, offset)
    query = select(ProjectRow).where(ProjectRow.deleted_at.is_(None))
    if member is not None:
        query = query.join(MemberRow, MemberRow.project_id == ProjectRow.id).where(MemberRow.principal == member)
    with db.session(readonly=True) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(ProjectRow.created_at.desc(), ProjectRow.id).limit(limit).offset(offset)
        )
        return [row.record() for row in rows], total


def require_project(
    session: Session, project_id: str, *, lock: Literal["share", "update"] | None = None,
    include_deleted: bool = False,
) -> ProjectRow:
    """The project's row, or NotFound (also for a deleted project, unless `include_deleted`).

    `lock` holds the row until the transaction ends: "share" by whatever adds jobs to the project,
    "update" by its deletion, so that no job is added to a project being deleted (PostgreSQL; on
    SQLite every writing transaction holds the database's write lock anyway).
    """
    query = select(ProjectRow).where(ProjectRow.id == project_id)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    row = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise NotFound(PROJECT_NOT_FOUND.format(id=project_id))
    if row.deleted_at is not None and not include_deleted:
        raise NotFound(PROJECT_DELETED.format(id=project_id, at=row.deleted_at.isoformat(timespec="seconds")))
    return row
