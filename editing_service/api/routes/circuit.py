"""The circuit of a project as a graph (circuit.json), thresholded, with the reviewers' current flags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from editing_service.api.access import needs
from editing_service.api.params import ProjectId
from editing_service.api.state import ServiceState, get_state
from editing_service.artifacts import ArtifactDir
from editing_service.circuit.graph import CircuitGraph, feature_id, read_circuit
from editing_service.circuit.view import select_view, with_flags
from editing_service.roles import Permission
from editing_service.store import Conflict, current_artifacts_dir, list_flags

router = APIRouter(tags=["circuit"])

NO_CIRCUIT = ("Project {project!r} has no circuit graph: run a discover job first (with settings.graph.build "
              "true, the default).")


@router.get("/projects/{project_id}/circuit", response_model=CircuitGraph, openapi_extra=needs(Permission.read))
def get_circuit(
    project_id: ProjectId,
    node_threshold: Annotated[float | None, Query(ge=0, le=1e30, description="keep nodes with |score| >= this")] = None,
    edge_threshold: Annotated[float | None, Query(ge=0, le=1e30, description="keep edges with |weight| >= this")] = None,
    max_nodes: Annotated[int | None, Query(ge=1, le=100000, description="strongest nodes kept per site")] = None,
    state: ServiceState = Depends(get_state),
) -> CircuitGraph:
    """The current discovery's circuit: nodes (features, error terms, the decision), edges with their
    weights, faithfulness and completeness curves, exact pruning and the head lens; flags are the
    reviewers' flags that apply to that discovery (not those made on an SAE it replaced)."""
    path = ArtifactDir(current_artifacts_dir(state.db, project_id)).circuit
    if not path.is_file():
        raise Conflict(NO_CIRCUIT.format(project=project_id))
    flags = {feature_id(f.site, f.feature): f.state for f in list_flags(state.db, project_id, current=True)}
    return select_view(with_flags(read_circuit(path), flags), node_threshold=node_threshold,
                       edge_threshold=edge_threshold, max_nodes=max_nodes)
