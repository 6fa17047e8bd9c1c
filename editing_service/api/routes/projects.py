"""Projects: a classifier and a dataset spec, with the run settings their jobs use; deleting them."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import ValidationError

from editing_service.api import project_setup, schemas
from editing_service.api.access import caller, needs
from editing_service.api.params import Offset, ProjectId
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.config import ServiceConfig
from editing_service.roles import MEMBERSHIP_SCOPED, Permission, Principal
from editing_service.shown_paths import shown
from editing_service.store import (
    count_features,
    create_project,
    current_discovery,
    delete_project,
    delete_upload,
    get_project,
    list_events,
    list_projects,
)

router = APIRouter(tags=["projects"])

UPLOAD_NEEDS_INLINE = "An uploaded data file needs an inline spec (dataset.inline) describing its columns."
BAD_PROJECT_FIELD = "Form field `project` is not a valid project: {problem}"
UPLOAD_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
BAD_UPLOAD_SUFFIX = "Uploaded data file {name!r} must end in one of {suffixes}."
BAD_UPLOAD_NAME = "Uploaded data file name must be 1 to {limit} bytes of UTF-8 without NUL or '/', got {size} bytes."
MAX_NAME_BYTES = 255  # the longest file name Linux file systems store


def project_view(state: ServiceState, record: object) -> schemas.Project:
    discovery = current_discovery(state.db, record.id)
    upload = "none" if record.upload_dir is None else "deleted" if record.upload_removed_at else "kept"
    return schemas.Project(
        id=record.id, name=record.name, model=_shown_ref(state, record.model_ref),
        dataset=_shown_ref(state, record.spec_ref),
        settings=record.settings, created_at=record.created_at, features=count_features(state.db, record.id),
        discovery=discovery.id if discovery else None, discovery_version=discovery.version if discovery else None,
        upload=upload,
    )


def _shown_ref(state: ServiceState, ref: str | None) -> str | None:
    """A model or spec reference as answers show it: names as they are, paths relative to the home."""
    return shown(ref, state.config.home) if ref is not None and Path(ref).is_absolute() else ref


def _upload_name(filename: str | None) -> str:
    """The uploaded file's own name, refused unless a file system can store it as given."""
    name = (filename or "data").replace("\\", "/").rsplit("/", 1)[-1]
    size = len(name.encode("utf-8", errors="replace"))
    if not 0 < size <= MAX_NAME_BYTES or "\x00" in name or name in (".", ".."):
        raise ValueError(BAD_UPLOAD_NAME.format(limit=MAX_NAME_BYTES, size=size))
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        raise ValueError(BAD_UPLOAD_SUFFIX.format(name=name, suffixes=", ".join(UPLOAD_SUFFIXES)))
    return name


def _create(state: ServiceState, body: schemas.ProjectCreate, principal: str, *, data_file: Path | None = None,
            upload_dir: Path | None = None) -> schemas.Project:
    """Create the project; whatever it wrote to disk (its inline spec, its upload) is removed if refused."""
    staging = state.config.home / "specs" / uuid.uuid4().hex[:12]
    try:
        model = project_setup.check_model(body.model, state.config)
        settings = project_setup.check_settings(body.settings)
        if body.dataset.spec is not None:
            spec_ref = project_setup.shipped_spec(body.dataset.spec)
        else:
            spec_ref = project_setup.inline_spec(body.dataset.inline or {}, folder=staging, config=state.config,
                                                 data_file=data_file)
        record = create_project(state.db, name=body.name, model_ref=model, spec_ref=spec_ref, settings=settings,
                                artifacts_root=state.config.home, upload_dir=upload_dir, created_by=principal)
    except BaseException:
        for folder in (staging, upload_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        raise
    return project_view(state, record)


@router.post("/projects", status_code=201, response_model=schemas.Project,
             openapi_extra=needs(Permission.create_project))
def create(
    body: schemas.ProjectCreate, state: ServiceState = Depends(get_state), principal: str = Depends(get_principal)
) -> schemas.Project:
    """Create a project from a model folder (or the embedded default) and a dataset spec."""
    return _create(state, body, principal)


@router.post("/projects/upload", status_code=201, response_model=schemas.Project,
             openapi_extra=needs(Permission.create_project))
def create_with_upload(
    project: Annotated[str, Form(description="the project as JSON, with dataset.inline describing the file")],
    data: Annotated[UploadFile, File(description="the data file: CSV, JSONL or Parquet")],
    state: ServiceState = Depends(get_state), principal: str = Depends(get_principal),
) -> schemas.Project:
    """Create a project whose data is uploaded with the request."""
    try:
        body = schemas.ProjectCreate.model_validate(json.loads(project))
    except (json.JSONDecodeError, ValidationError) as err:
        raise ValueError(BAD_PROJECT_FIELD.format(problem=err)) from err
    if body.dataset.inline is None:
        raise ValueError(UPLOAD_NEEDS_INLINE)
    name = _upload_name(data.filename)
    folder = state.config.uploads / uuid.uuid4().hex[:12]
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(data.file, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _create(state, body, principal, data_file=target, upload_dir=folder)


@router.get("/projects", response_model=schemas.ProjectList, openapi_extra=needs(Permission.read))
def list_all(
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0,
    state: ServiceState = Depends(get_state), principal: Principal = Depends(caller),
) -> schemas.ProjectList:
    """The projects the caller may see: every project for an admin, its own projects for the others."""
    member = principal.name if principal.role in MEMBERSHIP_SCOPED else None
    items, total = list_projects(state.db, limit=limit, offset=offset, member=member)
    return schemas.ProjectList(items=[project_view(state, p) for p in items], total=total, limit=limit,
                               offset=offset)


@router.get("/projects/{project_id}", response_model=schemas.Project, openapi_extra=needs(Permission.read))
def get(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> schemas.Project:
    return project_view(state, get_project(state.db, project_id))


def _spec_folder(spec_ref: str, config: ServiceConfig) -> Path | None:
    """The folder the service wrote a project's inline spec to (None for a shipped spec)."""
    folder = Path(spec_ref).parent
    return folder if folder.parent == config.home / "specs" else None


@router.delete("/projects/{project_id}", status_code=204, openapi_extra=needs(Permission.delete))
def delete(project_id: ProjectId, state: ServiceState = Depends(get_state),
           principal: str = Depends(get_principal)) -> Response:
    """Delete a project with its discoveries, edits, models, caches, inline spec and uploaded data.

    Refused (409) while a job of the project is queued or running: cancel it first. Its audit log and
    events are kept (GET .../audit and .../events still answer); the deletion is itself an event."""
    record = delete_project(state.db, project_id, principal=principal)
    for folder in (record.artifacts_dir, record.upload_dir, _spec_folder(record.spec_ref, state.config)):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return Response(status_code=204)


@router.delete("/projects/{project_id}/upload", status_code=204, openapi_extra=needs(Permission.delete))
def delete_uploaded_data(project_id: ProjectId, state: ServiceState = Depends(get_state),
                         principal: str = Depends(get_principal)) -> Response:
    """Delete the data file uploaded with the project. Its discoveries, edits, reports and models stay;
    new discoveries and edits are refused (409) since they need the data. 404 if it had no upload;
    409 while a job of the project runs."""
    shutil.rmtree(delete_upload(state.db, project_id, principal=principal), ignore_errors=True)
    return Response(status_code=204)


@router.get("/projects/{project_id}/events", response_model=schemas.EventList,
            openapi_extra=needs(Permission.read))
def events(
    project_id: ProjectId,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Offset = 0,
    state: ServiceState = Depends(get_state),
) -> schemas.EventList:
    """Changes other than flags, oldest first: discoveries made current (with the flags they carried
    over or left to review) and deletions. Also answers for a deleted project."""
    items = list_events(state.db, project_id)
    return schemas.EventList(
        items=[schemas.Event.model_validate(e, from_attributes=True) for e in items[offset:offset + limit]],
        total=len(items), limit=limit, offset=offset,
    )
