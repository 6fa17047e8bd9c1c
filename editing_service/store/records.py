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
FLAG_STATES = ("spurious", "task_relevant")
SUGGESTION_KINDS = ("lexicon", "protected_attribute")
FLAG_SOURCES = ("person", *SUGGESTION_KINDS)
FLAG_ACTIONS = ("set", "clear")
# Changes to a project or to who may act on it, audited with the principal that made them.
EVENT_ACTIONS = (
    "project_created",
    "project_deleted",
    "edit_created",
    "member_added",
    "member_removed",
    "token_created",
    "token_revoked",
)
AUDIT_ACTIONS = (*FLAG_ACTIONS, *EVENT_ACTIONS)
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
    """The current flag of one feature."""

    project_id: str
    site: str
    feature: int
    state: str
    rationale: str
    reviewer: str
    principal: str
    source: str
    updated_at: datetime

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
    """One audited change: a flag set or cleared (site, feature, reviewer, source given), or an event
    (EVENT_ACTIONS) on a project or on access, naming its `subject` (an edit, member or token)."""

    id: int
    project_id: str | None
    site: str | None
    feature: int | None
    action: str
    state: str | None
    previous_state: str | None
    rationale: str
    reviewer: str | None
    principal: str
    source: str | None
    at: datetime
    subject: str | None = None


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


@dataclass(frozen=True, slots=True)
class EditFolders:
    """Where an edit's models live, and whether its job has finished (what serving a prediction needs)."""

    status: str
    out_dir: Path
    project_dir: Path
