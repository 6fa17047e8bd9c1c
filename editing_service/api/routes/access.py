"""Access: who the caller is (/me), project members, database tokens, and the service's events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from editing_service.api import access_schemas as schemas
from editing_service.api.access import caller, needs
from editing_service.api.params import ID_PATTERN, Offset, ProjectId
from editing_service.api.state import ServiceState, get_state
from editing_service.roles import MEMBERSHIP_SCOPED, Permission, Principal, permissions, project_role
from editing_service.store import (
    Conflict,
    create_token,
    list_members,
    list_tokens,
    memberships,
    remove_member,
    revoke_token,
    service_events,
    set_member,
)

router = APIRouter(tags=["access"])
MemberPath = "/projects/{project_id}/members/{principal}"
TOKENS_OFF = ("Tokens are not kept in the database on this service: set EDITING_SERVICE_DATABASE_TOKENS=1 "
              "(tokens then come from EDITING_SERVICE_API_TOKENS and from /v1/tokens).")
CONFIGURED_NAME = "{name!r} has a token in EDITING_SERVICE_API_TOKENS; give database tokens to other names."
PrincipalName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]


@router.get("/me", response_model=schemas.Me, openapi_extra=needs(Permission.identify))
def me(principal: Principal = Depends(caller), state: ServiceState = Depends(get_state)) -> schemas.Me:
    """The caller's name, role and permissions, and its role on each project it is a member of."""
    scoped = principal.role in MEMBERSHIP_SCOPED
    member_of = memberships(state.db, principal.name) if scoped else []
    return schemas.Me(
        name=principal.name, role=principal.role, permissions=permissions(principal.role), all_projects=not scoped,
        memberships=[
            schemas.Membership(project_id=m.project_id, role=m.role,
                               permissions=permissions(project_role(principal.role, m.role)))
            for m in member_of],
    )


@router.get("/projects/{project_id}/members", response_model=schemas.MemberList,
            openapi_extra=needs(Permission.read))
def members(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> schemas.MemberList:
    """Who may act on the project (besides admins), and with which role."""
    return schemas.MemberList(items=[schemas.Member.model_validate(m, from_attributes=True)
                                     for m in list_members(state.db, project_id)])


@router.put(MemberPath, response_model=schemas.Member, openapi_extra=needs(Permission.manage_access))
def put_member(
    project_id: ProjectId, principal: PrincipalName, body: schemas.MemberSet,
    admin: Principal = Depends(caller), state: ServiceState = Depends(get_state),
) -> schemas.Member:
    """Make a principal (by name) a reviewer or viewer of the project, or change its role (audited)."""
    record = set_member(state.db, project_id=project_id, principal=principal, role=body.role.value,
                        added_by=admin.name)
    return schemas.Member.model_validate(record, from_attributes=True)


@router.delete(MemberPath, status_code=204, openapi_extra=needs(Permission.manage_access))
def delete_member(
    project_id: ProjectId, principal: PrincipalName,
    admin: Principal = Depends(caller), state: ServiceState = Depends(get_state),
) -> Response:
    """Take a principal off the project (audited)."""
    remove_member(state.db, project_id=project_id, principal=principal, removed_by=admin.name)
    return Response(status_code=204)


def _database_tokens(state: ServiceState) -> None:
    if not state.config.database_tokens:
        raise Conflict(TOKENS_OFF)


@router.get("/tokens", response_model=schemas.TokenList, openapi_extra=needs(Permission.manage_access))
def tokens(state: ServiceState = Depends(get_state)) -> schemas.TokenList:
    """The database's tokens (never the tokens themselves), revoked ones too."""
    _database_tokens(state)
    return schemas.TokenList(items=[schemas.Token.model_validate(t, from_attributes=True)
                                    for t in list_tokens(state.db)])


@router.post("/tokens", status_code=201, response_model=schemas.TokenCreated,
             openapi_extra=needs(Permission.manage_access))
def create(
    body: schemas.TokenCreate, request: Request,
    admin: Principal = Depends(caller), state: ServiceState = Depends(get_state),
) -> schemas.TokenCreated:
    """A new token for a principal and role, usable at once; the answer is the only place it is shown."""
    _database_tokens(state)
    if any(p.name == body.name for p in state.config.tokens.values()):
        raise Conflict(CONFIGURED_NAME.format(name=body.name))
    record, token = create_token(state.db, name=body.name, role=body.role.value, created_by=admin.name)
    _forget_cached_tokens(request)
    return schemas.TokenCreated(**schemas.Token.model_validate(record, from_attributes=True).model_dump(),
                                token=token)


@router.delete("/tokens/{token_id}", response_model=schemas.Token,
               openapi_extra=needs(Permission.manage_access))
def revoke(
    token_id: Annotated[str, Path(pattern=ID_PATTERN, description="a token's id")], request: Request,
    admin: Principal = Depends(caller), state: ServiceState = Depends(get_state),
) -> schemas.Token:
    """Revoke a token: refused by this replica at once, by the others within EDITING_SERVICE_TOKEN_CACHE_S."""
    _database_tokens(state)
    record = revoke_token(state.db, token_id, revoked_by=admin.name)
    _forget_cached_tokens(request)
    return schemas.Token.model_validate(record, from_attributes=True)


def _forget_cached_tokens(request: Request) -> None:
    resolver = request.scope.get("state", {}).get("principals")
    if resolver is not None:
        resolver.forget()


@router.get("/events", response_model=schemas.ServiceEventList, openapi_extra=needs(Permission.manage_access))
def events(
    project_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="only this project's events")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
    state: ServiceState = Depends(get_state),
) -> schemas.ServiceEventList:
    """Every change other than a flag, oldest first: projects created and deleted, edits, members, tokens."""
    items, total = service_events(state.db, project_id=project_id, limit=limit, offset=offset)
    return schemas.ServiceEventList(items=[schemas.ServiceEvent.model_validate(e, from_attributes=True)
                                           for e in items], total=total, limit=limit, offset=offset)
