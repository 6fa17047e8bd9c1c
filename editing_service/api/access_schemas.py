"""Request and response bodies of the access routes: the caller (/me), members, tokens, the service's events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from editing_service.api.schemas import Event, Page
from editing_service.roles import MemberRole, Permission, Role

ME_SCHEMA_VERSION = 1
# Names of principals kept by the service (members, database tokens): no separators of the token
# configuration (`:`, `=`, `,`), no spaces or control characters.
PrincipalName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]


class Membership(BaseModel):
    project_id: str
    role: MemberRole = Field(description="the role given on this project")
    permissions: list[Permission] = Field(description="what the caller may do on this project")


class Me(BaseModel):
    """The caller, and what it may do: the workbench shows only the actions allowed."""

    schema_version: int = ME_SCHEMA_VERSION
    name: str = Field(description="the principal's name, recorded with every change it makes")
    role: Role
    permissions: list[Permission] = Field(
        description="what the role allows: on every project for admin and service; on the projects of "
        "`memberships` (possibly less there) for reviewer and viewer")
    all_projects: bool = Field(description="whether the permissions hold on every project (no membership needed)")
    memberships: list[Membership]


class MemberSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: MemberRole


class Member(BaseModel):
    principal: str
    role: MemberRole
    added_by: str
    added_at: datetime


class MemberList(BaseModel):
    items: list[Member]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PrincipalName = Field(description="the principal the token acts as")
    role: Role


class Token(BaseModel):
    id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(Token):
    token: str = Field(description="the bearer token: shown only in this answer, stored only as its SHA-256")


class TokenList(BaseModel):
    items: list[Token]


class ServiceEvent(Event):
    """An event of any project, or of access (tokens: no project)."""

    project_id: str | None = Field(description="null for changes to access that belong to no project (tokens)")


class ServiceEventList(Page):
    items: list[ServiceEvent]
