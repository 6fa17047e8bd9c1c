"""What the workbench reads beside the core resources: the discovery's summary and SAE quality, and
exports of the flags (the CLI's flags file) and of the audit log (CSV)."""

from __future__ import annotations

import csv
import io
from collections import Counter

import yaml
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.params import ProjectId
from editing_service.api.state import ServiceState, get_state
from editing_service.artifacts import ArtifactDir
from editing_service.features.document import FeaturesDocument
from editing_service.features.flags import Flag, FlagSet
from editing_service.report.sae_quality import SAEQualityReport
from editing_service.roles import Permission
from editing_service.store import (
    Conflict,
    audit_log,
    count_features,
    current_artifacts_dir,
    get_project,
    list_flags,
)

router = APIRouter(tags=["review"])

NOT_DISCOVERED = "Project {project!r} has no finished discovery yet: run a discover job first."
EXPORT_POLICY = "Flags exported from project {project!r} ({name}); each flag names its reviewer and rationale."
FLAGS_FILE = {200: {"content": {"application/yaml": {"schema": {"type": "string"}}}, "description": "a flags file"}}
AUDIT_TABLE = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the audit log"}}
AUDIT_COLUMNS = ("id", "at", "action", "site", "feature", "state", "previous_state", "reviewer",
                 "principal", "source", "rationale")


@router.get("/projects/{project_id}/discovery", response_model=schemas.DiscoverySummary,
            openapi_extra=needs(Permission.read))
def discovery(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> schemas.DiscoverySummary:
    """The finished discovery's summary: circuit size per site, suggestions per rule, SAE quality per site."""
    artifacts = ArtifactDir(current_artifacts_dir(state.db, project_id))
    if count_features(state.db, project_id) == 0 or not artifacts.features.is_file():
        raise Conflict(NOT_DISCOVERED.format(project=project_id))
    document = FeaturesDocument.read(artifacts.features)
    quality = SAEQualityReport.read(artifacts.sae_quality).sites if artifacts.sae_quality.is_file() else {}
    return schemas.DiscoverySummary(
        sites=document.sites, cards_split=document.cards_split, seconds=document.seconds,
        circuit_per_site=dict(Counter(node.site for node in document.circuit)),
        cards=len(document.cards),
        suggestions=dict(Counter(s.kind for s in document.suggestions)),
        error_scores=document.attribution.error_scores,
        sae_quality={site: {"train": q.train, "validate": q.validation} for site, q in quality.items()},
    )


@router.get("/projects/{project_id}/flags.yaml", response_model=None, responses=FLAGS_FILE,
            openapi_extra=needs(Permission.read))
def flags_file(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> Response:
    """The current flags as the CLI's flags file: `editing-service edit --flags FILE` applies them."""
    project = get_project(state.db, project_id)
    flags = FlagSet(
        flags=[Flag(**f.snapshot()) for f in list_flags(state.db, project_id, current=True)],
        policy=EXPORT_POLICY.format(project=project.id, name=project.name),
    )
    text = yaml.safe_dump(flags.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return Response(text, media_type="application/yaml",
                    headers={"content-disposition": f'attachment; filename="flags-{project.id}.yaml"'})


@router.get("/projects/{project_id}/audit.csv", response_model=None, responses=AUDIT_TABLE,
            openapi_extra=needs(Permission.read))
def audit_csv(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> Response:
    """The whole audit log as CSV, oldest first: who, what, when, why."""
    project = get_project(state.db, project_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for entry in audit_log(state.db, project_id):
        view = schemas.AuditEntry.model_validate(entry, from_attributes=True).model_dump(mode="json")
        writer.writerow([_cell(view[c]) for c in AUDIT_COLUMNS])
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="audit-{project.id}.csv"'})


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
