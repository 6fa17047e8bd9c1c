"""Discoveries of a project: every discover job writes a new version; the current one is listed."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.params import DiscoveryId, ProjectId
from editing_service.api.state import ServiceState, get_state
from editing_service.roles import Permission
from editing_service.store import get_discovery, list_discoveries

router = APIRouter(tags=["jobs"])


def discovery_view(record: object) -> schemas.Discovery:
    return schemas.Discovery.model_validate(
        {**{k: getattr(record, k) for k in schemas.Discovery.model_fields if hasattr(record, k)},
         "artifacts_removed": record.artifacts_removed_at is not None}
    )


@router.get("/projects/{project_id}/discoveries", response_model=schemas.DiscoveryList,
            openapi_extra=needs(Permission.read))
def list_all(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> schemas.DiscoveryList:
    """The project's discoveries, newest first; `current` marks the one in use."""
    return schemas.DiscoveryList(items=[discovery_view(d) for d in list_discoveries(state.db, project_id)])


@router.get("/projects/{project_id}/discoveries/{discovery_id}", response_model=schemas.Discovery,
            openapi_extra=needs(Permission.read))
def get(project_id: ProjectId, discovery_id: DiscoveryId, state: ServiceState = Depends(get_state)) -> schemas.Discovery:
    """One discovery: status, settings, SAE digests, and which flags it carried over or left to review."""
    return discovery_view(get_discovery(state.db, project_id, discovery_id))
