"""Members, database tokens and audited events in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from editing_service.roles import MemberRole, Principal, Role
from editing_service.store import (
    Conflict,
    Database,
    Invalid,
    NotFound,
    ProjectRecord,
    create_project,
    create_token,
    list_members,
    list_projects,
    list_tokens,
    member_role,
    memberships,
    principal_for_digest,
    remove_member,
    revoke_token,
    service_events,
    set_member,
    token_digest,
)
from editing_service.store.tables import ApiTokenRow


def test_members_are_set_changed_and_removed_with_audit(db: Database, project: ProjectRecord) -> None:
    set_member(db, project_id=project.id, principal="ana", role="viewer", added_by="root")
    set_member(db, project_id=project.id, principal="ana", role="reviewer", added_by="root")
    set_member(db, project_id=project.id, principal="ben", role="viewer", added_by="root")
    assert [(m.principal, m.role) for m in list_members(db, project.id)] == [("ana", "reviewer"), ("ben", "viewer")]
    assert member_role(db, project.id, "ana") is MemberRole.reviewer and member_role(db, project.id, "zed") is None
    assert [m.project_id for m in memberships(db, "ben")] == [project.id]
    remove_member(db, project_id=project.id, principal="ben", removed_by="root")
    with pytest.raises(NotFound, match="'ben' is not a member"):
        remove_member(db, project_id=project.id, principal="ben", removed_by="root")
    with pytest.raises(Invalid, match="role must be one of 'reviewer', 'viewer'"):
        set_member(db, project_id=project.id, principal="ana", role="admin", added_by="root")
    with pytest.raises(NotFound):
        set_member(db, project_id="nope", principal="ana", role="viewer", added_by="root")
    entries, total = service_events(db, project_id=project.id, limit=100)
    assert [(e.action, e.target, e.detail, e.principal) for e in entries] == [
        ("member_added", "ana", {"role": "viewer", "previous_role": None}, "root"),
        ("member_added", "ana", {"role": "reviewer", "previous_role": "viewer"}, "root"),
        ("member_added", "ben", {"role": "viewer", "previous_role": None}, "root"),
        ("member_removed", "ben", {"previous_role": "viewer"}, "root"),
    ] and total == 4


def test_listing_by_member_shows_only_its_projects(db: Database, project: ProjectRecord, tmp_path: Path) -> None:
    other = create_project(db, name="other", model_ref=None, spec_ref="x", artifacts_root=tmp_path, created_by="root")
    set_member(db, project_id=other.id, principal="ana", role="viewer", added_by="root")
    items, total = list_projects(db, member="ana")
    assert total == 1 and [p.id for p in items] == [other.id]
    assert list_projects(db, member="nobody") == ([], 0)
    assert list_projects(db)[1] == 2


def test_tokens_are_stored_hashed_and_revoked(db: Database) -> None:
    record, token = create_token(db, name="bot", role="service", created_by="root")
    assert len(token) >= 40
    with db.session(readonly=True) as session:
        stored = session.scalar(select(ApiTokenRow.token_sha256).where(ApiTokenRow.id == record.id))
    assert stored == hashlib.sha256(token.encode()).hexdigest() == token_digest(token) and token not in stored
    assert principal_for_digest(db, token_digest(token)) == Principal("bot", Role.service)
    assert principal_for_digest(db, token_digest(token + "x")) is None
    revoked = revoke_token(db, record.id, revoked_by="root")
    assert revoked.revoked_at is not None and principal_for_digest(db, token_digest(token)) is None
    with pytest.raises(Conflict, match="already revoked"):
        revoke_token(db, record.id, revoked_by="root")
    with pytest.raises(NotFound):
        revoke_token(db, "nope", revoked_by="root")
    with pytest.raises(Invalid):
        create_token(db, name="x", role="owner", created_by="root")
    assert [(t.name, t.revoked_at is not None) for t in list_tokens(db)] == [("bot", True)]
    entries, total = service_events(db, limit=10)
    assert [(e.action, e.project_id, e.target, e.principal, e.detail) for e in entries] == [
        ("token_created", None, record.id, "root", {"name": "bot", "role": "service"}),
        ("token_revoked", None, record.id, "root", {"name": "bot", "role": "service"})]
    assert total == 2
