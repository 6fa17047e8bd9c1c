"""Discoveries: each discover job writes a new, versioned discovery in its own folder, which becomes the
project's current one only when it succeeds (`promote_discovery`, one transaction).

The current discovery is the succeeded one with the highest version; a project discovered before
discoveries were versioned has none, and its artifacts sit in the project's own folder. Until a new
discovery is promoted, the previous one stays current: its features are listed, its folder serves
edits, whatever happens to the new one (failure, cancellation, a killed server).

Flags are bound to the SAE they were made on (its digest). Promotion keeps every flag, and records
which ones its SAEs leave valid (same digest at the flag's site: carried over) and which ones were
made on an SAE it replaced (to review: they apply to no feature until set again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from editing_service.store.database import Database
from editing_service.store.errors import Conflict, NotFound
from editing_service.store.events import add_event
from editing_service.store.features import feature_values
from editing_service.store.jobs import add_job
from editing_service.store.projects import require_project
from editing_service.store.quota import JobQuota
from editing_service.store.records import ACTIVE_STATUSES, DiscoveryRecord, JobRecord
from editing_service.store.tables import DiscoveryRow, FeatureRow, FlagRow, JobRow, ProjectRow, new_id, utcnow

DISCOVERY_NOT_FOUND = "Discovery {id!r} does not exist in project {project!r}."
ALREADY_DISCOVERING = (
    "Project {project!r} already has a discover job {job!r} ({status}); wait for it or cancel it."
)
UPLOAD_REMOVED = "The uploaded data of project {project!r} was deleted; it can no longer be discovered or edited."
DISCOVERIES_FOLDER = "discoveries"


def start_discovery(
    db: Database, *, project_id: str, settings: Mapping[str, Any] | None = None, principal: str = "service",
    quota: JobQuota | None = None,
) -> tuple[DiscoveryRecord, JobRecord]:
    """Queue a new discovery and its 'discover' job (params {"discovery_id": ...}) in one transaction.

    `settings` are the run-settings overrides this discovery uses (default: the project's); with a
    `quota`, QuotaExceeded when `principal` may create no more jobs now. Raises Conflict when the project already has a queued or running discovery: the database's unique index
    decides, so of concurrent requests exactly one wins.
    """
    try:
        with db.session() as session:
            project = require_project(session, project_id, lock="share")
            check_upload_kept(project)
            discovery, job = _add_discovery(session, project, settings, principal, quota)
            session.flush()
            return discovery.record(current=False), job.record()
    except IntegrityError as err:
        active = _active(db, project_id)
        if active is None:  # the other discovery already ended: a plain retry would be accepted
            raise Conflict(ALREADY_DISCOVERING.format(project=project_id, job="?", status="just started")) from err
        raise Conflict(ALREADY_DISCOVERING.format(project=project_id, job=active.job_id, status=active.status)) from err


def discovery_for_job(db: Database, job: JobRecord) -> DiscoveryRecord:
    """The discovery a discover job writes; one is added for a job queued without it (by `enqueue_job`,
    or before discoveries were versioned). Conflict if the project has another active discovery."""
    with db.session() as session:
        row = session.scalar(select(DiscoveryRow).where(DiscoveryRow.job_id == job.id))
        if row is None:
            project = require_project(session, job.project_id, lock="share")
            row = _row(session, project, dict(project.settings or {}), "service", job_id=job.id, status=job.status)
            try:
                session.flush()
            except IntegrityError as err:
                raise Conflict(ALREADY_DISCOVERING.format(project=job.project_id, job="another", status="active")) from err
        return row.record(current=_is_current(session, row))


def get_discovery(db: Database, project_id: str, discovery_id: str) -> DiscoveryRecord:
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        row = session.get(DiscoveryRow, discovery_id)
        if row is None or row.project_id != project_id:
            raise NotFound(DISCOVERY_NOT_FOUND.format(id=discovery_id, project=project_id))
        return row.record(current=_is_current(session, row))


def list_discoveries(db: Database, project_id: str) -> list[DiscoveryRecord]:
    """The project's discoveries, newest first."""
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        current = current_row(session, project_id)
        rows = session.scalars(
            select(DiscoveryRow).where(DiscoveryRow.project_id == project_id).order_by(DiscoveryRow.version.desc())
        )
        return [row.record(current=current is not None and row.id == current.id) for row in rows]


def current_discovery(db: Database, project_id: str) -> DiscoveryRecord | None:
    """The project's current discovery (None: never discovered, or discovered before versioning)."""
    with db.session(readonly=True) as session:
        require_project(session, project_id)
        row = current_row(session, project_id)
        return row.record(current=True) if row is not None else None


def current_artifacts_dir(db: Database, project_id: str) -> Path:
    """The folder of the project's current discovery (the project's own folder for a project discovered
    before versioning, or not discovered yet)."""
    with db.session(readonly=True) as session:
        project = require_project(session, project_id)
        row = current_row(session, project_id)
        return Path(row.artifacts_dir if row is not None else project.artifacts_dir)


def promote_discovery(
    db: Database,
    discovery_id: str,
    *,
    job: JobRecord,
    rows: Sequence[Mapping[str, Any]],
    sae_digests: Mapping[str, str],
    previous_digests: Mapping[str, str] | None = None,
) -> DiscoveryRecord | None:
    """Make a finished discovery current: its circuit replaces the features, and the flags are sorted
    into carried over and to review, in one transaction. Returns None (and changes nothing) when `job`
    no longer runs under the worker and attempt that produced the discovery.

    `previous_digests` are the SAE digests of a project discovered before versioning (its flags carry
    no digest yet); they are given to those flags first.
    """
    with db.session() as session:
        owned = session.scalar(
            select(JobRow.id)
            .where(JobRow.id == job.id, JobRow.status == "running", JobRow.worker_id == job.worker_id,
                   JobRow.attempts == job.attempts)
            .with_for_update()
        )
        row = session.get(DiscoveryRow, discovery_id, with_for_update=True, populate_existing=True)
        if owned is None or row is None or row.status == "succeeded":
            return None
        project_id = row.project_id
        for site, digest in (previous_digests or {}).items():
            session.execute(
                update(FlagRow)
                .where(FlagRow.project_id == project_id, FlagRow.site == site, FlagRow.sae_digest == "")
                .values(sae_digest=digest)
                .execution_options(synchronize_session=False)
            )
        values = feature_values(project_id, [{**r, "sae_digest": sae_digests.get(str(r["site"]), "")} for r in rows])
        session.execute(delete(FeatureRow).where(FeatureRow.project_id == project_id))
        if values:
            session.execute(insert(FeatureRow), values)
        carried, to_review = [], []
        for flag in session.scalars(select(FlagRow).where(FlagRow.project_id == project_id)
                                    .order_by(FlagRow.site, FlagRow.feature)):
            same_sae = flag.sae_digest != "" and sae_digests.get(flag.site) == flag.sae_digest
            (carried if same_sae else to_review).append(f"{flag.site}/{flag.feature}")
        row.status, row.finished_at = "succeeded", utcnow()
        row.sae_digests, row.flags_carried, row.flags_to_review = dict(sae_digests), carried, to_review
        add_event(session, project_id=project_id, action="discovery_current", target=row.id,
                  principal=row.started_by,
                  detail={"version": row.version, "flags_carried": carried, "flags_to_review": to_review})
        session.flush()
        return row.record(current=True)


def current_row(session: Session, project_id: str) -> DiscoveryRow | None:
    return session.scalars(
        select(DiscoveryRow)
        .where(DiscoveryRow.project_id == project_id, DiscoveryRow.status == "succeeded")
        .order_by(DiscoveryRow.version.desc())
        .limit(1)
    ).one_or_none()


def current_digests(session: Session, project_id: str) -> dict[str, str]:
    """The SAE digest of every site of the current discovery ({} before versioning: then every flag,
    made without a digest, is valid)."""
    row = current_row(session, project_id)
    return dict(row.sae_digests or {}) if row is not None else {}


def check_upload_kept(project: ProjectRow) -> None:
    """Conflict when the project's uploaded data was deleted (nothing can be discovered or edited)."""
    if project.upload_removed_at is not None:
        raise Conflict(UPLOAD_REMOVED.format(project=project.id))


def _add_discovery(
    session: Session, project: ProjectRow, settings: Mapping[str, Any] | None, principal: str,
    quota: JobQuota | None = None,
) -> tuple[DiscoveryRow, JobRow]:
    discovery_id = new_id()
    job = add_job(session, project_id=project.id, kind="discover", params={"discovery_id": discovery_id},
                  principal=principal, quota=quota)
    chosen = dict(settings) if settings is not None else dict(project.settings or {})
    return _row(session, project, chosen, principal, job_id=job.id, discovery_id=discovery_id), job


def _row(
    session: Session, project: ProjectRow, settings: dict[str, Any], principal: str, *, job_id: str,
    discovery_id: str | None = None, status: str = "queued",
) -> DiscoveryRow:
    discovery_id = discovery_id or new_id()
    version = (session.scalar(
        select(func.max(DiscoveryRow.version)).where(DiscoveryRow.project_id == project.id)
    ) or 0) + 1
    row = DiscoveryRow(
        id=discovery_id, project_id=project.id, job_id=job_id, version=version, status=status,
        settings=settings, artifacts_dir=str(Path(project.artifacts_dir) / DISCOVERIES_FOLDER / discovery_id),
        sae_digests={}, flags_carried=[], flags_to_review=[], started_by=principal, created_at=utcnow(),
    )
    session.add(row)
    return row


def _is_current(session: Session, row: DiscoveryRow) -> bool:
    current = current_row(session, row.project_id)
    return current is not None and current.id == row.id


def _active(db: Database, project_id: str) -> DiscoveryRecord | None:
    with db.session(readonly=True) as session:
        row = session.scalars(
            select(DiscoveryRow).where(DiscoveryRow.project_id == project_id,
                                       DiscoveryRow.status.in_(ACTIVE_STATUSES))
        ).first()
        return row.record(current=False) if row is not None else None
