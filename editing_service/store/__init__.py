"""Persistence of projects, jobs, features, flags, their audit log and edits (SQLAlchemy; SQLite or PostgreSQL).

Repository functions take a `Database` first and return immutable records, never live ORM objects.
They raise `NotFound`, `Conflict` or `Invalid` with messages meant for the service's users.
"""

from editing_service.store.database import Database
from editing_service.store.edits import create_edit, get_edit, get_edit_folders, list_edits, set_edit_summary
from editing_service.store.errors import Conflict, Invalid, NotFound, StoreError
from editing_service.store.events import record_event, service_audit_log
from editing_service.store.features import count_features, get_feature, list_features, replace_features
from editing_service.store.flags import apply_suggestions, audit_log, clear_flag, list_flags, set_flag
from editing_service.store.jobs import (
    claim_job,
    enqueue_job,
    finish_job,
    get_job,
    heartbeat,
    list_jobs,
    recover_stale_jobs,
    release_jobs_of_worker,
    report_progress,
    request_cancel,
)
from editing_service.store.members import list_members, member_role, memberships, remove_member, set_member
from editing_service.store.projects import create_project, get_project, list_projects
from editing_service.store.records import (
    FLAG_SOURCES,
    FLAG_STATES,
    JOB_KINDS,
    JOB_STATUSES,
    SUGGESTION_KINDS,
    AuditRecord,
    EditFolders,
    EditRecord,
    FeatureRecord,
    FlagRecord,
    JobRecord,
    MemberRecord,
    ProjectRecord,
    TokenRecord,
)
from editing_service.store.tokens import (
    create_token,
    list_tokens,
    principal_for_digest,
    revoke_token,
    token_digest,
)

__all__ = [
    "FLAG_SOURCES",
    "FLAG_STATES",
    "JOB_KINDS",
    "JOB_STATUSES",
    "SUGGESTION_KINDS",
    "AuditRecord",
    "Conflict",
    "Database",
    "EditFolders",
    "EditRecord",
    "FeatureRecord",
    "FlagRecord",
    "Invalid",
    "JobRecord",
    "MemberRecord",
    "TokenRecord",
    "NotFound",
    "ProjectRecord",
    "StoreError",
    "apply_suggestions",
    "create_token",
    "list_members",
    "list_tokens",
    "member_role",
    "memberships",
    "principal_for_digest",
    "record_event",
    "remove_member",
    "revoke_token",
    "service_audit_log",
    "set_member",
    "token_digest",
    "audit_log",
    "claim_job",
    "clear_flag",
    "count_features",
    "create_edit",
    "create_project",
    "enqueue_job",
    "release_jobs_of_worker",
    "finish_job",
    "get_edit",
    "get_edit_folders",
    "get_feature",
    "get_job",
    "get_project",
    "heartbeat",
    "list_edits",
    "list_features",
    "list_flags",
    "list_jobs",
    "list_projects",
    "recover_stale_jobs",
    "replace_features",
    "report_progress",
    "request_cancel",
    "set_edit_summary",
    "set_flag",
]
