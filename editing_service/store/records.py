"""Plain, immutable records that the repository functions return (never live ORM objects).

Also the allowed values of every enumerated column, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from editing_service.roles import MemberRole, Role

JOB_KINDS = ("discover", "edit")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
FLAG_STATES = ("spurious", "task_relevant")
SUGGESTION_KINDS = ("lexicon", "protected_attribute")
FLAG_SOURCES = ("person", *SUGGESTION_KINDS)
AUDIT_ACTIONS = ("set", "clear")
# Changes other than flags, kept in the events table with the principal that made them.
EVENT_ACTIONS = (
    "discovery_current",
    "edit_deleted",
    "upload_deleted",
    "project_deleted",
    "project_created",
    "edit_created",
    "member_added",
    "member_removed",
    "token_created",
    "token_revoked",
)
TOKEN_ROLES = tuple(role.value for role in Role)
MEMBER_ROLES = tuple(role.value for role in MemberRole)


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    id: str
    name: str
    model_ref: str | None
    spec_ref: str
    settings: dict[str, Any]
    artifacts_dir: Path
    created_at: datetime
    upload_dir: Path | None = None
    upload_removed_at: datetime | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    project_id: str
    kind: str
    status: str
    step: str
    progress: float
    error: str | None
    params: dict[str, Any]
    attempts: int
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """The current flag of one feature, and the SAE it was made on.

    `current` is False when a re-discovery replaced the SAE of its site (another digest): the same
    feature index may mean something else now, so the flag applies to nothing until a reviewer sets
    it again (or clears it).
    """

    project_id: str
    site: str
    feature: int
    state: str
    rationale: str
    reviewer: str
    principal: str
    source: str
    updated_at: datetime
    sae_digest: str = ""
    discovery_id: str | None = None
    current: bool = True

    def snapshot(self) -> dict[str, Any]:
        """The flag as an edit records it (the flags-file form, without the store's bookkeeping)."""
        return {
            "site": self.site,
            "feature": self.feature,
            "state": self.state,
            "rationale": self.rationale,
            "reviewer": self.reviewer,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class FeatureRecord:
    """A circuit feature with its current flag (None when nobody has flagged it)."""

    project_id: str
    site: str
    feature: int
    score: float
    rank: int
    label: str | None
    suggestions: list[str]
    card: dict[str, Any] | None
    flag: FlagRecord | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    project_id: str
    site: str
    feature: int
    action: str
    state: str | None
    previous_state: str | None
    rationale: str
    reviewer: str
    principal: str
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A change other than a flag: who, what, when, and details; project_id is None for access changes
    that belong to no project (tokens)."""

    id: int
    project_id: str | None
    action: str
    target: str
    principal: str
    detail: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A bearer token kept in the database (only its SHA-256 is stored)."""

    id: str
    name: str
    role: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemberRecord:
    project_id: str
    principal: str
    role: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class EditRecord:
    id: str
    project_id: str
    job_id: str
    flags: list[dict[str, Any]]
    policy: str
    status: str
    out_dir: Path
    summary: dict[str, Any] | None
    created_at: datetime
    discovery_id: str | None = None


@dataclass(frozen=True, slots=True)
class EditFolders:
    """Where an edit's models live, and whether its job has finished (what serving a prediction needs).

    `discovery_dir` holds the discovery the edit was made on (its original model); a project discovered
    before discoveries were versioned has it in the project's own folder.
    """

    status: str
    out_dir: Path
    discovery_dir: Path


@dataclass(frozen=True, slots=True)
class DiscoveryRecord:
    """One discovery of a project: its version, status, folder, and the digests of its SAEs by site.

    `flags_carried` / `flags_to_review` (feature ids "site/feature") are what its promotion found:
    flags whose SAE it kept, and flags made on an SAE it replaced.
    """

    id: str
    project_id: str
    job_id: str
    version: int
    status: str
    settings: dict[str, Any]
    artifacts_dir: Path
    sae_digests: dict[str, str]
    flags_carried: list[str]
    flags_to_review: list[str]
    created_at: datetime
    finished_at: datetime | None
    artifacts_removed_at: datetime | None
    current: bool
