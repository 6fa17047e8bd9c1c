"""Jobs: discoveries and edits run in the background; poll them, cancel them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from editing_service.api import project_setup, schemas
from editing_service.api.access import needs
from editing_service.api.params import JobId, ProjectId
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.roles import Permission
from editing_service.store import get_job, get_project, list_jobs, request_cancel, start_discovery

router = APIRouter(tags=["jobs"])


def job_view(record: object) -> schemas.Job:
    return schemas.Job.model_validate(record, from_attributes=True)


@router.post("/projects/{project_id}/jobs", status_code=202, response_model=schemas.Job,
             openapi_extra=needs(Permission.discover))
def create(project_id: ProjectId, body: schemas.JobCreate, state: ServiceState = Depends(get_state),
           principal: str = Depends(get_principal)) -> schemas.Job:
    """Queue a discovery: activations, SAEs, attribution, circuit and feature cards, in a new folder.

    It becomes the project's current discovery only when it succeeds; until then (and if it fails or
    is cancelled) the previous one stays current. 409 while the project has another queued or
    running discovery; 429 when the caller's job quota is spent (shared by every replica)."""
    project = get_project(state.db, project_id)
    settings = None
    if body.settings is not None:
        settings = project_setup.check_settings(project_setup.merge_settings(project.settings, body.settings))
    _, job = start_discovery(state.db, project_id=project_id, settings=settings, principal=principal,
                             quota=state.quota)
    return job_view(job)


@router.get("/projects/{project_id}/jobs", response_model=schemas.JobList,
            openapi_extra=needs(Permission.read))
def list_of_project(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> schemas.JobList:
    get_project(state.db, project_id)
    return schemas.JobList(items=[job_view(j) for j in list_jobs(state.db, project_id=project_id)])


@router.get("/jobs/{job_id}", response_model=schemas.Job, openapi_extra=needs(Permission.read))
def get(job_id: JobId, state: ServiceState = Depends(get_state)) -> schemas.Job:
    """A job's status, step, progress (0 to 1), error and timestamps."""
    return job_view(get_job(state.db, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=schemas.Job, openapi_extra=needs(Permission.cancel))
def cancel(job_id: JobId, state: ServiceState = Depends(get_state)) -> schemas.Job:
    """Cancel a queued job at once, or a running one at its next progress report."""
    return job_view(request_cancel(state.db, job_id))
