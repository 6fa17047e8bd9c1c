"""Project membership: which principals (by name) act on a project, and with which role."""

from __future__ import annotations

from sqlalchemy import delete, select

from editing_service.roles import MemberRole
from editing_service.store.database import Database
from editing_service.store.errors import NotFound, check_choice
from editing_service.store.events import add_event
from editing_service.store.projects import require_project
from editing_service.store.records import MEMBER_ROLES, MemberRecord
from editing_service.store.tables import MemberRow, ProjectRow, utcnow

NOT_A_MEMBER = "{principal!r} is not a member of project {project!r}."


def set_member(db: Database, *, project_id: str, principal: str, role: str, added_by: str) -> MemberRecord:
    """Make `principal` a member of the project with `role` (replacing its role if it is one already)."""
    check_choice(role, MEMBER_ROLES, "role")
    with db.session() as session:
        require_project(session, project_id)
        row = session.scalar(select(MemberRow).where(*_key(project_id, principal)).with_for_update())
        previous = None if row is None else row.role
        if row is None:
            row = MemberRow(project_id=project_id, principal=principal)
            session.add(row)
        row.role, row.added_by, row.added_at = role, added_by, utcnow()
        add_event(session, project_id=project_id, action="member_added", target=principal, principal=added_by,
                  detail={"role": role, "previous_role": previous})
        session.flush()
        return row.record()


def remove_member(db: Database, *, project_id: str, principal: str, removed_by: str) -> None:
    with db.session() as session:
        require_project(session, project_id)
        previous = session.scalar(delete(MemberRow).where(*_key(project_id, principal)).returning(MemberRow.role))
        if previous is None:
            raise NotFound(NOT_A_MEMBER.format(principal=principal, project=project_id))
        add_event(session, project_id=project_id, action="member_removed", target=principal, principal=removed_by,
                  detail={"previous_role": previous})


def list_members(db: Database, project_id: str) -> list[MemberRecord]:
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        rows = session.scalars(select(MemberRow).where(MemberRow.project_id == project_id)
                               .order_by(MemberRow.principal))
        return [row.record() for row in rows]


def member_role(db: Database, project_id: str, principal: str) -> MemberRole | None:
    """The principal's role on the project, or None when it is not a member (or the project does not exist)."""
    with db.session(readonly=True) as session:
        role = session.scalar(select(MemberRow.role).where(*_key(project_id, principal)))
        return None if role is None else MemberRole(role)


def memberships(db: Database, principal: str) -> list[MemberRecord]:
    """Every project the principal is a member of (deleted projects left out)."""
    with db.session(readonly=True) as session:
        rows = session.scalars(
            select(MemberRow).join(ProjectRow, ProjectRow.id == MemberRow.project_id)
            .where(MemberRow.principal == principal, ProjectRow.deleted_at.is_(None))
            .order_by(MemberRow.project_id))
        return [row.record() for row in rows]


def _key(project_id: str, principal: str) -> tuple:
    return (MemberRow.project_id == project_id, MemberRow.principal == principal)
