"""Bearer tokens kept in the database: created and revoked by admins while the service runs.

Only a token's SHA-256 is stored; the token itself is returned once, when it is created. Tokens are
random (256 bits), so an unsalted hash cannot be reversed by guessing and lets a lookup use the index.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from editing_service.roles import Principal, Role
from editing_service.store.database import Database
from editing_service.store.errors import Conflict, NotFound, check_choice
from editing_service.store.events import add_event
from editing_service.store.records import TOKEN_ROLES, TokenRecord
from editing_service.store.tables import ApiTokenRow, new_id, utcnow

TOKEN_NOT_FOUND = "Token {id!r} does not exist."
ALREADY_REVOKED = "Token {id!r} was already revoked."
TOKEN_BYTES = 32


def token_digest(token: str) -> str:
    """The SHA-256 of a token, as the table stores it."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(db: Database, *, name: str, role: str, created_by: str) -> tuple[TokenRecord, str]:
    """A new token for principal `name` with `role`; returns its record and the token (shown only now)."""
    check_choice(role, TOKEN_ROLES, "role")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiTokenRow(id=new_id(), name=name, role=role, token_sha256=token_digest(token), created_by=created_by,
                      created_at=utcnow())
    with db.session() as session:
        session.add(row)
        session.flush()
        add_event(session, project_id=None, action="token_created", target=row.id, principal=created_by,
                  detail={"name": name, "role": role})
        return row.record(), token


def revoke_token(db: Database, token_id: str, *, revoked_by: str) -> TokenRecord:
    """Revoke a token: requests bearing it are refused from now on (after the lookup cache expires)."""
    with db.session() as session:
        row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.id == token_id).with_for_update())
        if row is None:
            raise NotFound(TOKEN_NOT_FOUND.format(id=token_id))
        if row.revoked_at is not None:
            raise Conflict(ALREADY_REVOKED.format(id=token_id))
        row.revoked_at = utcnow()
        add_event(session, project_id=None, action="token_revoked", target=row.id, principal=revoked_by,
                  detail={"name": row.name, "role": row.role})
        session.flush()
        return row.record()


def list_tokens(db: Database) -> list[TokenRecord]:
    """Every database token, revoked ones too, oldest first."""
    with db.session(readonly=True) as session:
        return [row.record() for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at,
                                                                                        ApiTokenRow.id))]


def principal_for_digest(db: Database, digest: str) -> Principal | None:
    """The principal of the live (not revoked) token with this SHA-256, or None."""
    with db.session(readonly=True) as session:
        row = session.execute(
            select(ApiTokenRow.name, ApiTokenRow.role)
            .where(ApiTokenRow.token_sha256 == digest, ApiTokenRow.revoked_at.is_(None))
        ).first()
        return None if row is None else Principal(name=row.name, role=Role(row.role))
