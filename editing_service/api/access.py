"""Authorization: the one dependency that every REST route runs, and how a route says what it needs.

A route declares its permission with `openapi_extra=needs(Permission.x)` (it shows in /docs.json as
`x-permission`). `authorize` then checks the caller's role and, for routes of one project (a
`project_id` or `job_id` in the path), its membership: a reviewer or viewer that is no member of the
project gets 404, as if it did not exist; one whose role there does not grant the permission gets 403.
The app refuses to start if a route declares nothing (`check_routes`).
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute

from editing_service.api.state import ServiceState, get_state
from editing_service.roles import GRANTS, MEMBERSHIP_SCOPED, Permission, Principal, project_role
from editing_service.store import NotFound, get_job, member_role
from editing_service.store.jobs import JOB_NOT_FOUND
from editing_service.store.projects import PROJECT_NOT_FOUND

PERMISSION_KEY = "x-permission"
NO_PERMISSION_DECLARED = "Route {methods} {path} declares no permission: give it openapi_extra=needs(...)."
ROLE_MAY_NOT = "Principal {name!r} (role {role}) may not {permission}."
PROJECT_ROLE_MAY_NOT = "Principal {name!r} is a {role} of project {project!r} and may not {permission} there."
NOT_AUTHENTICATED = "The request reached the API without an authenticated principal."


def needs(permission: Permission) -> dict[str, Any]:
    """The `openapi_extra` of a route that needs `permission`."""
    return {PERMISSION_KEY: permission.value}


def route_permission(route: APIRoute) -> Permission:
    declared = (route.openapi_extra or {}).get(PERMISSION_KEY)
    if declared is None:
        raise RuntimeError(NO_PERMISSION_DECLARED.format(methods=",".join(sorted(route.methods)), path=route.path))
    return Permission(declared)


def check_routes(app: FastAPI) -> None:
    """Raise (at startup) unless every operation of the app's OpenAPI document declares its permission."""
    for path, item in app.openapi().get("paths", {}).items():
        for method, operation in item.items():
            if PERMISSION_KEY not in operation:
                raise RuntimeError(NO_PERMISSION_DECLARED.format(methods=method.upper(), path=path))


def caller(request: Request) -> Principal:
    """The authenticated principal (the bearer middleware put it in the request's scope)."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise PermissionError(NOT_AUTHENTICATED)
    return principal


async def authorize(request: Request, state: ServiceState = Depends(get_state)) -> Principal:
    """The app-wide dependency: the caller, once its role (and membership) allow the matched route.

    Admins and services are checked without a query; a reviewer's or viewer's membership is looked up
    (in a worker thread) only on routes of one project.
    """
    principal = caller(request)
    permission = route_permission(request.scope["route"])
    if permission not in GRANTS[principal.role]:
        raise PermissionError(ROLE_MAY_NOT.format(name=principal.name, role=principal.role.value,
                                                  permission=permission.value))
    params = request.path_params
    if principal.role in MEMBERSHIP_SCOPED and ("project_id" in params or "job_id" in params):
        await anyio.to_thread.run_sync(_check_membership, state, principal, permission, dict(params))
    return principal


def _check_membership(state: ServiceState, principal: Principal, permission: Permission,
                      params: dict[str, str]) -> None:
    if "project_id" in params:
        project_id = params["project_id"]
        hidden: Exception = NotFound(PROJECT_NOT_FOUND.format(id=project_id))
    else:
        project_id = get_job(state.db, params["job_id"]).project_id
        hidden = NotFound(JOB_NOT_FOUND.format(id=params["job_id"]))
    role = project_role(principal.role, member_role(state.db, project_id, principal.name))
    if role is None:
        raise hidden
    if permission not in GRANTS[role]:
        raise PermissionError(PROJECT_ROLE_MAY_NOT.format(name=principal.name, role=role.value, project=project_id,
                                                          permission=permission.value))
