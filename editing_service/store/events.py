"""Service events: changes other than flags (a project created or deleted, a discovery made current, an
edit queued or deleted, members and tokens changed), each with the principal that made it.

Kept when what they describe is deleted, the project included, and readable after its deletion.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

# A module reference: projects.py records its events through this module (an import cycle otherwise).
from editing_service.store import projects as project_store
from editing_service.store.database import Database
from editing_service.store.errors import check_choice
from editing_service.store.paging import check_paging
from editing_service.store.records import EVENT_ACTIONS, EventRecord
from editing_service.store.tables import EventRow, utcnow


def add_event(
    session: Session, *, project_id: str | None, action: str, target: str, principal: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an event to the session's transaction (it is kept only if the change it records is)."""
    check_choice(action, EVENT_ACTIONS, "action")
    session.add(EventRow(project_id=project_id, action=action, target=target, principal=principal,
                         detail=dict(detail or {}), at=utcnow()))


def service_events(
    db: Database, *, project_id: str | None = None, limit: int, offset: int = 0
) -> tuple[list[EventRecord], int]:
    """One page of the service's events (of one project when given), oldest first, and their number."""
    check_paging(limit, offset)
    query = select(EventRow)
    if project_id is not None:
        query = query.where(EventRow.project_id == project_id)
    with db.session(readonly=True) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(EventRow.id).limit(limit).offset(offset))
        return [row.record() for row in rows], total


def list_events(db: Database, project_id: str, *, limit: int | None = None, offset: int = 0) -> list[EventRecord]:
    """The project's events, oldest first; also for a deleted project."""
    check_paging(limit, offset)
    with db.session(readonly=True) as session:
        project_store.require_project(session, project_id, include_deleted=True)
        rows = session.scalars(
            select(EventRow).where(EventRow.project_id == project_id).order_by(EventRow.id).limit(limit).offset(offset)
        )
        return [row.record() for row in rows]
