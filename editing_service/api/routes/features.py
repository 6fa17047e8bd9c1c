"""Features of a project's circuit, their cards, and reviewers' flags with the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.params import (
    MAX_INDEX,
    QUERY_TEXT_MAX,
    SITE_PATTERN,
    FeatureIndex,
    Offset,
    ProjectId,
    SiteName,
    Text,
)
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.roles import Permission
from editing_service.store import (
    apply_suggestions,
    audit_log,
    clear_flag,
    get_feature,
    get_project,
    list_features,
    list_flags,
    set_flag,
)

router = APIRouter(tags=["features and flags"])
FeaturePath = "/projects/{project_id}/features/{site}/{feature}"


def summary_view(record: object) -> dict[str, object]:
    return {
        "id": f"{record.site}/{record.feature}", "site": record.site, "feature": record.feature,
        "score": record.score, "rank": record.rank, "label": record.label, "suggestions": record.suggestions,
        "flag": record.flag.state if record.flag else None, "has_card": record.card is not None,
    }


def flag_view(record: object) -> schemas.Flag:
    return schemas.Flag(id=f"{record.site}/{record.feature}", **{
        k: getattr(record, k) for k in
        ("site", "feature", "state", "rationale", "reviewer", "principal", "source", "updated_at",
         "discovery_id", "current")})


@router.get("/projects/{project_id}/features", response_model=schemas.FeatureList,
            openapi_extra=needs(Permission.read))
def list_all(
    project_id: ProjectId,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN)] = None,
    flag: Annotated[Literal["spurious", "task_relevant", "none"] | None, Query()] = None,
    suggestion: Annotated[Literal["lexicon", "protected_attribute"] | None, Query()] = None,
    sort: Annotated[Literal["rank", "score", "-score", "abs_score", "-abs_score"], Query()] = "rank",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
    state: ServiceState = Depends(get_state),
) -> schemas.FeatureList:
    """The circuit's features, paged; sorted by rank (strongest first) or by score."""
    get_project(state.db, project_id)
    items, total = list_features(state.db, project_id, site=site, flag=flag, suggestion=suggestion, sort=sort,
                                 limit=limit, offset=offset)
    return schemas.FeatureList(items=[schemas.FeatureSummary(**summary_view(f)) for f in items], total=total,
                               limit=limit, offset=offset)


@router.get(FeaturePath, response_model=schemas.FeatureCard, openapi_extra=needs(Permission.read))
def get(project_id: ProjectId, site: SiteName, feature: FeatureIndex, state: ServiceState = Depends(get_state)) -> schemas.FeatureCard:
    """One feature with its card: top examples, per-class and per-group activation, effects, neighbours."""
    record = get_feature(state.db, project_id, site, feature)
    return schemas.FeatureCard(**summary_view(record), card=record.card)


@router.put(FeaturePath + "/flag", response_model=schemas.Flag, openapi_extra=needs(Permission.flag))
def put_flag(
    project_id: ProjectId, site: SiteName, feature: FeatureIndex, body: schemas.FlagRequest,
    state: ServiceState = Depends(get_state), principal: str = Depends(get_principal),
) -> schemas.Flag:
    """Flag a feature spurious (to be ablated) or task-relevant (to be kept), with a rationale."""
    return flag_view(set_flag(state.db, project_id=project_id, site=site, feature=feature, state=body.state,
                              rationale=body.rationale, reviewer=body.reviewer, principal=principal))


@router.delete(FeaturePath + "/flag", status_code=204, openapi_extra=needs(Permission.flag))
def delete_flag(
    project_id: ProjectId, site: SiteName, feature: FeatureIndex,
    reviewer: Annotated[Text, Query(min_length=1, max_length=200)],
    rationale: Annotated[Text, Query(max_length=QUERY_TEXT_MAX)] = "",
    state: ServiceState = Depends(get_state), principal: str = Depends(get_principal),
) -> Response:
    """Clear a feature's flag (recorded in the audit log)."""
    clear_flag(state.db, project_id=project_id, site=site, feature=feature, reviewer=reviewer,
               rationale=rationale, principal=principal)
    return Response(status_code=204)


@router.get("/projects/{project_id}/flags", response_model=schemas.FlagList,
            openapi_extra=needs(Permission.read))
def flags(
    project_id: ProjectId, current: bool | None = None, state: ServiceState = Depends(get_state),
) -> schemas.FlagList:
    """The flag of every flagged feature. `current=true`: only those that apply to the current discovery
    (made on it, or carried over: same SAE); `current=false`: only those that need review (made on an
    SAE that a re-discovery replaced)."""
    get_project(state.db, project_id)
    return schemas.FlagList(items=[flag_view(f) for f in list_flags(state.db, project_id, current=current)])


@router.post("/projects/{project_id}/suggestions/apply", response_model=schemas.FlagList,
             openapi_extra=needs(Permission.flag))
def apply(
    project_id: ProjectId, body: schemas.ApplySuggestions,
    state: ServiceState = Depends(get_state), principal: str = Depends(get_principal),
) -> schemas.FlagList:
    """Flag spurious every feature suggested by one rule, in one call (recorded with the rule as source)."""
    get_project(state.db, project_id)
    changed = apply_suggestions(state.db, project_id=project_id, kind=body.kind, reviewer=body.reviewer,
                                principal=principal, rationale=body.rationale)
    return schemas.FlagList(items=[flag_view(f) for f in changed])


@router.get("/projects/{project_id}/audit", response_model=schemas.AuditLog,
            openapi_extra=needs(Permission.read))
def audit(
    project_id: ProjectId,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN, description="only this site's entries")] = None,
    feature: Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="only this feature's entries")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Offset = 0,
    state: ServiceState = Depends(get_state),
) -> schemas.AuditLog:
    """Every flag change (of one site or feature when given), oldest first: who, when, what, why (kept, and readable, after the project's
    deletion)."""
    entries = audit_log(state.db, project_id, site=site, feature=feature)
    return schemas.AuditLog(
        items=[schemas.AuditEntry.model_validate(e, from_attributes=True) for e in entries[offset:offset + limit]],
        total=len(entries), limit=limit, offset=offset,
    )
