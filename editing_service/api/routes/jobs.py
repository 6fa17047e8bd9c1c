"""Jobs: discovery and edits run in the background; poll them, cancel them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.params import JobId, ProjectId
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.roles import Permission
from editing_service.store import Conflict, enqueue_job, get_job, get_project, list_jobs, request_cancel

router = APIRouter(tags=["jobs"])

ALREADY_DISCOVERING = "Project {project!r} already has a discover job {job!r} ({status}); wait for it or cancel it."


def job_view(record: object) -> schemas.Job:
    return schemas.Job.model_validate(record, from_attributes=True)


@router.post("/projects/{project_id}/jobs", status_code=202, response_model=schemas.Job,
             openapi_extra=needs(Permission.discover))
def create(project_id: ProjectId, body: schemas.JobCreate, state: ServiceState = Depends(get_state),
           principal: str = Depends(get_principal)) -> schemas.Job:
    """Queue a discover job: activations, SAEs, attribution, circuit and feature cards."""
    get_project(state.db, project_id)
    state.quota.check(principal)
    for job in list_jobs(state.db, project_id=project_id):
        if job.kind == body.kind and job.status in ("queued", "running"):
            raise Conflict(ALREADY_DISCOVERING.format(project=project_id, job=job.id, status=job.status))
    job = enqueue_job(state.db, project_id=project_id, kind=body.kind)
    state.quota.record(principal)
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
