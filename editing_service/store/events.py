"""Audited events on projects and on access (who created, deleted, added, revoked what), beside the flag
changes that flags.py audits; and the service-wide audit log that shows them all."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import check_choice
from editing_service.store.paging import check_paging
from editing_service.store.records import EVENT_ACTIONS, AuditRecord
from editing_service.store.tables import AuditEntryRow, utcnow


def record_event(
    session: Session,
    *,
    action: str,
    principal: str,
    project_id: str | None = None,
    subject: str | None = None,
    state: str | None = None,
    previous_state: str | None = None,
    rationale: str = "",
) -> None:
    """Append an event to the audit log, in the caller's transaction (so it commits with the change)."""
    check_choice(action, EVENT_ACTIONS, "action")
    session.execute(insert(AuditEntryRow).values(
        project_id=project_id, action=action, principal=principal, subject=subject, state=state,
        previous_state=previous_state, rationale=rationale, at=utcnow(),
    ))


def service_audit_log(db: Database, *, limit: int, offset: int = 0) -> tuple[list[AuditRecord], int]:
    """One page of every audited change of the service (all projects, and access), oldest first."""
    check_paging(limit, offset)
    with db.session(readonly=True) as session:
        total = session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0
        rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.id).limit(limit).offset(offset))
        return [row.record() for row in rows], total
