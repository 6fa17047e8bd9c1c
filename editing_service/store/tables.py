"""The ORM models (SQLAlchemy 2.0, typed): projects, jobs, discoveries, features, flags, audit entries,
service events and edits.

Every timestamp is stored and returned as timezone-aware UTC, on SQLite too (see `UTCDateTime`).
Columns added to a table after its first release are nullable or have a server default, so that
`Database.create_all` can add them to an existing database (see database.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from editing_service.store.records import (
    ACTIVE_STATUSES,
    AUDIT_ACTIONS,
    EVENT_ACTIONS,
    FLAG_SOURCES,
    FLAG_STATES,
    JOB_KINDS,
    JOB_STATUSES,
    MEMBER_ROLES,
    TOKEN_ROLES,
    AuditRecord,
    DiscoveryRecord,
    EditRecord,
    EventRecord,
    FeatureRecord,
    FlagRecord,
    JobRecord,
    MemberRecord,
    ProjectRecord,
    TokenRecord,
)

NAME_LENGTH = 200
DIGEST_LENGTH = 64


def new_id() -> str:
    """A short random hex id."""
    return uuid4().hex[:12]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no time zones: values are stored there as naive UTC, in one fixed text format, so that
    comparing and sorting them in SQL stays correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"Timestamps must be timezone-aware, got {value!r}.")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, allowed: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in allowed)})"


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[dict[str, Any]]: JSON,
    }


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_ref: Mapped[str | None] = mapped_column(Text)
    spec_ref: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifacts_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    upload_dir: Mapped[str | None] = mapped_column(Text)
    upload_removed_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(200))

    def record(self) -> ProjectRecord:
        return ProjectRecord(
            id=self.id,
            name=self.name,
            model_ref=self.model_ref,
            spec_ref=self.spec_ref,
            settings=dict(self.settings or {}),
            artifacts_dir=Path(self.artifacts_dir),
            created_at=self.created_at,
            upload_dir=Path(self.upload_dir) if self.upload_dir else None,
            upload_removed_at=self.upload_removed_at,
            deleted_at=self.deleted_at,
        )


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_one_of("kind", JOB_KINDS), name="ck_jobs_kind"),
        CheckConstraint(_one_of("status", JOB_STATUSES), name="ck_jobs_status"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_project", "project_id", "created_at"),
        Index("ix_jobs_principal_created", "principal", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    step: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    principal: Mapped[str | None] = mapped_column(String(200))  # who created it (counted by the job quota)

    def record(self) -> JobRecord:
        return JobRecord(
            id=self.id,
            project_id=self.project_id,
            kind=self.kind,
            status=self.status,
            step=self.step,
            progress=self.progress,
            error=self.error,
            params=dict(self.params or {}),
            attempts=self.attempts,
            worker_id=self.worker_id,
            cancel_requested=self.cancel_requested,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            heartbeat_at=self.heartbeat_at,
        )


class FeatureRow(Base):
    __tablename__ = "features"
    __table_args__ = (Index("ix_features_rank", "project_id", "rank"),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    site: Mapped[str] = mapped_column(String(200), primary_key=True)
    feature: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(Text)
    suggestions: Mapped[list[str]] = mapped_column(default=list)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    sae_digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH), default="", server_default="")

    def record(self, flag: FlagRow | None) -> FeatureRecord:
        return FeatureRecord(
            project_id=self.project_id,
            site=self.site,
            feature=self.feature,
            score=self.score,
            rank=self.rank,
            label=self.label,
            suggestions=list(self.suggestions or []),
            card=self.card,
            flag=flag.record() if flag is not None else None,
        )


class FlagRow(Base):
    """The current flag of a feature, bound to the SAE it was made on (`sae_digest`, the content hash of
    its site's SAE; "" for flags made before discoveries were versioned) and the discovery that trained
    it. No foreign key to `features`: flags outlive a new discovery, and apply to a feature of the
    current circuit only while that site's SAE has the same digest."""

    __tablename__ = "flags"
    __table_args__ = (
        CheckConstraint(_one_of("state", FLAG_STATES), name="ck_flags_state"),
        CheckConstraint(_one_of("source", FLAG_SOURCES), name="ck_flags_source"),
    )

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    site: Mapped[str] = mapped_column(String(200), primary_key=True)
    feature: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(32))
    rationale: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32), default="person")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sae_digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH), default="", server_default="")
    discovery_id: Mapped[str | None] = mapped_column(String(32))

    def record(self, current_digests: dict[str, str] | None = None) -> FlagRecord:
        return FlagRecord(
            project_id=self.project_id,
            site=self.site,
            feature=self.feature,
            state=self.state,
            rationale=self.rationale,
            reviewer=self.reviewer,
            principal=self.principal,
            source=self.source,
            updated_at=self.updated_at,
            sae_digest=self.sae_digest,
            discovery_id=self.discovery_id,
            current=current_digests is None or current_digests.get(self.site, "") == self.sae_digest,
        )


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        CheckConstraint(_one_of("action", AUDIT_ACTIONS), name="ck_audit_action"),
        Index("ix_audit_project", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    site: Mapped[str] = mapped_column(String(200))
    feature: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str | None] = mapped_column(String(32))
    previous_state: Mapped[str | None] = mapped_column(String(32))
    rationale: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def record(self) -> AuditRecord:
        return AuditRecord(
            id=self.id,
            project_id=self.project_id,
            site=self.site,
            feature=self.feature,
            action=self.action,
            state=self.state,
            previous_state=self.previous_state,
            rationale=self.rationale,
            reviewer=self.reviewer,
            principal=self.principal,
            source=self.source,
            at=self.at,
        )


class EditRow(Base):
    __tablename__ = "edits"
    __table_args__ = (
        CheckConstraint(_one_of("status", JOB_STATUSES), name="ck_edits_status"),
        Index("ix_edits_project", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    policy: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    out_dir: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    discovery_id: Mapped[str | None] = mapped_column(String(32))
    artifacts_removed_at: Mapped[datetime | None]

    def record(self) -> EditRecord:
        return EditRecord(
            id=self.id,
            project_id=self.project_id,
            job_id=self.job_id,
            flags=[dict(flag) for flag in self.flags or []],
            policy=self.policy,
            status=self.status,
            out_dir=Path(self.out_dir),
            summary=self.summary,
            created_at=self.created_at,
            discovery_id=self.discovery_id,
        )


class DiscoveryRow(Base):
    """One discovery of a project, in its own artifact folder. Its status follows its job's, except that
    `succeeded` is set only by the promotion that makes it current, and never changes afterwards.

    At most one discovery per project is queued or running: a partial unique index enforces it in
    the database (SQLite and PostgreSQL both have them), so concurrent requests cannot both win.
    """

    __tablename__ = "discoveries"
    __table_args__ = (
        CheckConstraint(_one_of("status", JOB_STATUSES), name="ck_discoveries_status"),
        Index("ux_discoveries_version", "project_id", "version", unique=True),
        Index(
            "ux_discoveries_one_active",
            "project_id",
            unique=True,
            sqlite_where=text(_one_of("status", ACTIVE_STATUSES)),
            postgresql_where=text(_one_of("status", ACTIVE_STATUSES)),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifacts_dir: Mapped[str] = mapped_column(Text)
    sae_digests: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flags_carried: Mapped[list[str]] = mapped_column(default=list)
    flags_to_review: Mapped[list[str]] = mapped_column(default=list)
    started_by: Mapped[str] = mapped_column(String(200), default="service")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    artifacts_removed_at: Mapped[datetime | None]

    def record(self, *, current: bool) -> DiscoveryRecord:
        return DiscoveryRecord(
            id=self.id,
            project_id=self.project_id,
            job_id=self.job_id,
            version=self.version,
            status=self.status,
            settings=dict(self.settings or {}),
            artifacts_dir=Path(self.artifacts_dir),
            sae_digests=dict(self.sae_digests or {}),
            flags_carried=list(self.flags_carried or []),
            flags_to_review=list(self.flags_to_review or []),
            created_at=self.created_at,
            finished_at=self.finished_at,
            artifacts_removed_at=self.artifacts_removed_at,
            current=current,
        )


class ApiTokenRow(Base):
    """A bearer token kept in the database: its SHA-256 (never the token), owner's name and role."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(_one_of("role", TOKEN_ROLES), name="ck_api_tokens_role"),
        UniqueConstraint("token_sha256", name="uq_api_tokens_hash"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    def record(self) -> TokenRecord:
        return TokenRecord(id=self.id, name=self.name, role=self.role, created_by=self.created_by,
                           created_at=self.created_at, revoked_at=self.revoked_at)


class MemberRow(Base):
    """A principal's role on one project."""

    __tablename__ = "project_members"
    __table_args__ = (
        CheckConstraint(_one_of("role", MEMBER_ROLES), name="ck_project_members_role"),
        Index("ix_project_members_principal", "principal"),
    )

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    principal: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    def record(self) -> MemberRecord:
        return MemberRecord(project_id=self.project_id, principal=self.principal, role=self.role,
                            added_by=self.added_by, added_at=self.added_at)


class EventRow(Base):
    """A change other than a flag: to a project (created, a discovery made current, an edit queued or
    deleted, members, deletions) or to access (tokens: no project). No foreign key: events outlive what
    they describe, the project included."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_one_of("action", EVENT_ACTIONS), name="ck_events_action"),
        Index("ix_events_project", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def record(self) -> EventRecord:
        return EventRecord(
            id=self.id,
            project_id=self.project_id,
            action=self.action,
            target=self.target,
            principal=self.principal,
            detail=dict(self.detail or {}),
            at=self.at,
        )
