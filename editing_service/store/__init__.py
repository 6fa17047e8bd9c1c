"""Persistence of projects, jobs, discoveries, features, flags, their audit log, events and edits
(SQLAlchemy; SQLite or PostgreSQL).

Repository functions take a `Database` first and return immutable records, never live ORM objects.
They raise `NotFound`, `Conflict` or `Invalid` with messages meant for the service's users.
"""

from editing_service.store.database import Database
from editing_service.store.deletion import (
    ExpiredArtifacts,
    delete_edit,
    delete_project,
    delete_upload,
    expired_artifacts,
    leftover_folders,
    mark_artifacts_removed,
)
from editing_service.store.discoveries import (
    current_discovery,
    discovery_for_job,
    get_discovery,
    list_discoveries,
    promote_discovery,
    start_discovery,
)
from editing_service.store.edits import (
    create_edit,
    edit_discovery_dir,
    get_edit,
    get_edit_folders,
    list_edits,
    set_edit_summary,
)
from editing_service.store.errors import Conflict, Invalid, NotFound, StoreError
from editing_service.store.events import list_events
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
from editing_service.store.projects import create_project, get_project, list_projects
from editing_service.store.records import (
    FLAG_SOURCES,
    FLAG_STATES,
    JOB_KINDS,
    JOB_STATUSES,
    SUGGESTION_KINDS,
    AuditRecord,
    DiscoveryRecord,
    EditFolders,
    EditRecord,
    EventRecord,
    FeatureRecord,
    FlagRecord,
    JobRecord,
    ProjectRecord,
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
    "DiscoveryRecord",
    "EditFolders",
    "EditRecord",
    "EventRecord",
    "ExpiredArtifacts",
    "FeatureRecord",
    "FlagRecord",
    "Invalid",
    "JobRecord",
    "NotFound",
    "ProjectRecord",
    "StoreError",
    "apply_suggestions",
    "audit_log",
    "claim_job",
    "clear_flag",
    "count_features",
    "create_edit",
    "create_project",
    "current_discovery",
    "delete_edit",
    "delete_project",
    "delete_upload",
    "discovery_for_job",
    "edit_discovery_dir",
    "enqueue_job",
    "expired_artifacts",
    "get_discovery",
    "leftover_folders",
    "list_discoveries",
    "list_events",
    "mark_artifacts_removed",
    "promote_discovery",
    "start_discovery",
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
