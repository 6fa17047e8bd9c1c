"""Service events: changes other than flags (a project created, an edit queued, members and tokens
changed), each with the principal that made it. Kept when what they describe is deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
