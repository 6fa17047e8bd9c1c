"""Service events: changes to a project other than flags (deletions, a discovery made current).

Kept when what they describe is deleted, the project included, and readable after its deletion.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import check_choice
from editing_service.store.paging import check_paging
from editing_service.store.projects import require_project
from editing_service.store.records import EVENT_ACTIONS, EventRecord
from editing_service.store.tables import EventRow, utcnow


def add_event(
    session: Session, *, project_id: str, action: str, target: str, principal: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an event to the session's transaction (it is kept only if the change it records is)."""
    check_choice(action, EVENT_ACTIONS, "action")
    session.add(EventRow(project_id=project_id, action=action, target=target, principal=principal,
                         detail=dict(detail or {}), at=utcnow()))


def list_events(db: Database, project_id: str, *, limit: int | None = None, offset: int = 0) -> list[EventRecord]:
    """The project's events, oldest first; also for a deleted project."""
    check_paging(limit, offset)
    with db.session(readonly=True) as session:
        require_project(session, project_id, include_deleted=True)
        rows = session.scalars(
            select(EventRow).where(EventRow.project_id == project_id).order_by(EventRow.id).limit(limit).offset(offset)
        )
        return [row.record() for row in rows]
