"""Flags: the current verdict on each feature, and the append-only audit log of every change.

Each change upserts the current flag and appends its audit entry in one transaction. Concurrent
reviewers are serialised per feature: on PostgreSQL the feature's row is locked (SELECT ... FOR UPDATE)
before the previous flag is read; on SQLite every writing transaction holds the database's write lock
from its start (see database.py). So each audit entry's previous_state is the state it replaced.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.discoveries import current_digests, current_row
from editing_service.store.errors import NotFound, check_choice
from editing_service.store.features import has_suggestion, require_feature
from editing_service.store.paging import check_paging
from editing_service.store.projects import require_project
from editing_service.store.records import (
    FLAG_SOURCES,
    FLAG_STATES,
    SUGGESTION_KINDS,
    AuditRecord,
    FlagRecord,
)
from editing_service.store.tables import AuditEntryRow, FeatureRow, FlagRow, utcnow

NO_FLAG_TO_CLEAR = "Feature {site}/{feature} of project {project!r} has no flag to clear."
SUGGESTED_RATIONALE = "Suggested by the {kind} rule."


def set_flag(
    db: Database,
    *,
    project_id: str,
    site: str,
    feature: int,
    state: str,
    rationale: str,
    reviewer: str,
    principal: str,
    source: str = "person",
) -> FlagRecord:
    """Flag a circuit feature 'spurious' or 'task_relevant' (replacing its flag) and audit the change."""
    check_choice(state, FLAG_STATES, "state")
    check_choice(source, FLAG_SOURCES, "source")
    with db.session() as session:
        require_project(session, project_id)
        row = require_feature(session, project_id, site, feature, lock=True)
        previous = session.scalar(
            select(FlagRow.state).where(*_flag_key(project_id, site, feature)).with_for_update()
        )
        return _write_flag(
            session,
            project_id=project_id,
            site=site,
            feature=feature,
            sae_digest=row.sae_digest,
            discovery=_current_id(session, project_id),
            state=state,
            previous_state=previous,
            rationale=rationale,
            reviewer=reviewer,
            principal=principal,
            source=source,
        )


def clear_flag(
    db: Database,
    *,
    project_id: str,
    site: str,
    feature: int,
    reviewer: str,
    principal: str,
    rationale: str = "",
) -> AuditRecord:
    """Remove a feature's flag (it may have left the circuit since) and audit it; returns the audit entry."""
    with db.session() as session:
        require_project(session, project_id)
        # Taken in the same order as set_flag (feature, then flag), when the feature is still in the circuit.
        session.execute(
            select(FeatureRow.feature)
            .where(
                FeatureRow.project_id == project_id, FeatureRow.site == site, FeatureRow.feature == feature
            )
            .with_for_update()
        )
        previous = session.scalar(
            delete(FlagRow).where(*_flag_key(project_id, site, feature)).returning(FlagRow.state)
        )
        if previous is None:
            raise NotFound(NO_FLAG_TO_CLEAR.format(site=site, feature=feature, project=project_id))
        entry = AuditEntryRow(
            project_id=project_id,
            site=site,
            feature=feature,
            action="clear",
            state=None,
            previous_state=previous,
            rationale=rationale,
            reviewer=reviewer,
            principal=principal,
            source="person",
            at=utcnow(),
        )
        session.add(entry)
        session.flush()
        return entry.record()


def list_flags(db: Database, project_id: str, *, current: bool | None = None) -> list[FlagRecord]:
    """The project's flags, by site and feature; `current` True (False) keeps only those valid for
    (made on an SAE replaced by) the current discovery."""
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        digests = current_digests(session, project_id)
        rows = session.scalars(
            select(FlagRow).where(FlagRow.project_id == project_id).order_by(FlagRow.site, FlagRow.feature)
        )
        flags = [row.record(digests) for row in rows]
        return [f for f in flags if current is None or f.current == current]


def audit_log(
    db: Database,
    project_id: str,
    *,
    site: str | None = None,
    feature: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[AuditRecord]:
    """Every flag change of the project (optionally of one site or feature), oldest first; also for a
    deleted project (its audit log is kept)."""
    check_paging(limit, offset)
    query = select(AuditEntryRow).where(AuditEntryRow.project_id == project_id)
    if site is not None:
        query = query.where(AuditEntryRow.site == site)
    if feature is not None:
        query = query.where(AuditEntryRow.feature == feature)
    with db.session(readonly=True) as session:
        require_project(session, project_id, include_deleted=True)
        rows = session.scalars(query.order_by(AuditEntryRow.id).limit(limit).offset(offset))
        return [row.record() for row in rows]


def apply_suggestions(
    db: Database,
    *,
    project_id: str,
    kind: str,
    reviewer: str,
    principal: str,
    rationale: str | None = None,
) -> list[FlagRecord]:
    """Flag spurious every feature suggested by the `kind` rule, in one transaction; returns the flags changed.

    Features a person flagged task_relevant, and features already flagged spurious, are left alone.
    """
    check_choice(kind, SUGGESTION_KINDS, "kind")
    rationale = SUGGESTED_RATIONALE.format(kind=kind) if rationale is None else rationale
    with db.session() as session:
        require_project(session, project_id)
        discovery = _current_id(session, project_id)
        suggested = session.execute(
            select(FeatureRow.site, FeatureRow.feature, FeatureRow.sae_digest)
            .where(FeatureRow.project_id == project_id, has_suggestion(kind))
            .order_by(FeatureRow.site, FeatureRow.feature)
            .with_for_update()
        ).all()
        current = {
            (row.site, row.feature): row
            for row in session.scalars(select(FlagRow).where(FlagRow.project_id == project_id))
        }
        changed = []
        for site, feature, sae_digest in suggested:
            flag = current.get((site, feature))
            valid = flag is not None and flag.sae_digest == sae_digest  # else made on another SAE
            if valid and (flag.state == "spurious" or flag.source == "person"):
                continue
            changed.append(
                _write_flag(
                    session,
                    project_id=project_id,
                    site=site,
                    feature=feature,
                    sae_digest=sae_digest,
                    discovery=discovery,
                    state="spurious",
                    previous_state=flag.state if flag is not None else None,
                    rationale=rationale,
                    reviewer=reviewer,
                    principal=principal,
                    source=kind,
                )
            )
        return changed


def _write_flag(
    session: Session,
    *,
    project_id: str,
    site: str,
    feature: int,
    sae_digest: str,
    discovery: str | None,
    state: str,
    previous_state: str | None,
    rationale: str,
    reviewer: str,
    principal: str,
    source: str,
) -> FlagRecord:
    now = utcnow()
    binding = {"sae_digest": sae_digest, "discovery_id": discovery}
    verdict: dict[str, Any] = {
        "state": state,
        "rationale": rationale,
        "reviewer": reviewer,
        "principal": principal,
        "source": source,
    }
    upsert = _insert(session).values(
        project_id=project_id, site=site, feature=feature, updated_at=now, **verdict, **binding
    )
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[FlagRow.project_id, FlagRow.site, FlagRow.feature],
            set_={**verdict, **binding, "updated_at": now},
        )
    )
    session.execute(
        insert(AuditEntryRow).values(
            project_id=project_id,
            site=site,
            feature=feature,
            action="set",
            previous_state=previous_state,
            at=now,
            **verdict,
        )
    )
    return FlagRecord(project_id=project_id, site=site, feature=feature, updated_at=now, **verdict, **binding)


def _current_id(session: Session, project_id: str) -> str | None:
    row = current_row(session, project_id)
    return row.id if row is not None else None


def _insert(session: Session) -> Any:
    """INSERT with ON CONFLICT support for the session's database."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(FlagRow)


def _flag_key(project_id: str, site: str, feature: int) -> tuple[Any, ...]:
    return (FlagRow.project_id == project_id, FlagRow.site == site, FlagRow.feature == feature)
