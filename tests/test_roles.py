"""Roles, permissions and the rule that every REST route declares the permission it needs."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

from editing_service.api.access import check_routes, needs
from editing_service.api.app import create_app
from editing_service.roles import GRANTS, MemberRole, Permission, Role, permissions, project_role


def test_what_each_role_may_do() -> None:
    assert set(permissions(Role.admin)) == set(Permission)
    assert permissions(Role.reviewer) == [Permission.identify, Permission.read, Permission.flag, Permission.edit,
                                          Permission.predict]
    assert permissions(Role.viewer) == [Permission.identify, Permission.read, Permission.predict]
    assert permissions(Role.service) == [Permission.identify, Permission.predict]
    assert permissions(None) == []
    assert all(Permission.identify in granted for granted in GRANTS.values())


@pytest.mark.parametrize(("role", "membership", "acting"), [
    (Role.admin, None, Role.admin),
    (Role.service, None, Role.service),
    (Role.reviewer, None, None),
    (Role.viewer, None, None),
    (Role.reviewer, MemberRole.reviewer, Role.reviewer),
    (Role.reviewer, "viewer", Role.viewer),
    (Role.viewer, MemberRole.reviewer, Role.viewer),
    (Role.viewer, "viewer", Role.viewer),
])
def test_a_project_role_is_the_lesser_of_role_and_membership(role: Role, membership: object, acting: object) -> None:
    assert project_role(role, membership) == acting


def test_the_app_declares_a_permission_on_every_route_and_refuses_one_without() -> None:
    check_routes(create_app())
    app = FastAPI()
    router = APIRouter()
    router.get("/declared", openapi_extra=needs(Permission.read))(lambda: None)
    router.get("/forgotten")(lambda: None)
    app.include_router(router)
    with pytest.raises(RuntimeError, match="Route GET /forgotten declares no permission"):
        check_routes(app)
