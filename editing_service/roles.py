"""Who may do what: the principals' roles, the permissions a route needs, and which role grants which.

A principal (one bearer token's owner) has one global role:

    admin     everything, on every project
    reviewer  read, flag and create edits, on the projects it is a member of
    viewer    read only, on the projects it is a member of
    service   predict only (any project's edits)

On a project, a reviewer or viewer acts with the lesser of its global role and its membership role
(a viewer made a `reviewer` member still only reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    viewer = "viewer"
    service = "service"


class MemberRole(StrEnum):
    """The role a principal has on one project (admins need no membership; services have none)."""

    reviewer = "reviewer"
    viewer = "viewer"


class Permission(StrEnum):
    identify = "me:read"
    read = "project:read"
    flag = "flags:write"
    edit = "edits:create"
    predict = "predict"
    discover = "jobs:discover"
    cancel = "jobs:cancel"
    create_project = "projects:create"
    delete = "projects:delete"
    manage_access = "access:manage"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.reviewer: frozenset({Permission.identify, Permission.read, Permission.flag, Permission.edit,
                              Permission.predict}),
    Role.viewer: frozenset({Permission.identify, Permission.read, Permission.predict}),
    Role.service: frozenset({Permission.identify, Permission.predict}),
}

# Roles whose rights on a project come from its membership table; the others act on every project.
MEMBERSHIP_SCOPED = frozenset({Role.reviewer, Role.viewer})
_RANK = {Role.viewer: 0, Role.reviewer: 1}


def project_role(role: Role, membership: MemberRole | str | None) -> Role | None:
    """The role a principal acts with on one project; None when it has no access to it at all."""
    if role not in MEMBERSHIP_SCOPED:
        return role
    if membership is None:
        return None
    member = Role(MemberRole(membership).value)
    return min(role, member, key=_RANK.__getitem__)


def permissions(role: Role | None) -> list[Permission]:
    """What `role` may do, in the enum's order."""
    granted = GRANTS.get(role, frozenset()) if role is not None else frozenset()
    return [p for p in Permission if p in granted]


@dataclass(frozen=True, slots=True)
class Principal:
    """The owner of a bearer token: the name recorded with its changes, and its global role."""

    name: str
    role: Role

    def may(self, permission: Permission) -> bool:
        """Whether the role grants `permission` somewhere (on some project, for the scoped roles)."""
        return permission in GRANTS[self.role]
