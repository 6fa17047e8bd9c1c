"""Projects: a classifier and a dataset spec, with the run settings their jobs use."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from pydantic import ValidationError

from editing_service.api import project_setup, schemas
from editing_service.api.access import caller, needs
from editing_service.api.params import Offset, ProjectId
from editing_service.api.paths import shown
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.roles import MEMBERSHIP_SCOPED, Permission, Principal
from editing_service.store import count_features, create_project, get_project, list_projects

router = APIRouter(tags=["projects"])

UPLOAD_NEEDS_INLINE = "An uploaded data file needs an inline spec (dataset.inline) describing its columns."
BAD_PROJECT_FIELD = "Form field `project` is not a valid project: {problem}"
UPLOAD_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
BAD_UPLOAD_SUFFIX = "Uploaded data file {name!r} must end in one of {suffixes}."
BAD_UPLOAD_NAME = "Uploaded data file name must be 1 to {limit} bytes of UTF-8 without NUL or '/', got {size} bytes."
MAX_NAME_BYTES = 255  # the longest file name Linux file systems store


def project_view(state: ServiceState, record: object) -> schemas.Project:
    return schemas.Project(
        id=record.id, name=record.name, model=_shown_ref(state, record.model_ref),
        dataset=_shown_ref(state, record.spec_ref),
        settings=record.settings, created_at=record.created_at, features=count_features(state.db, record.id),
    )


def _shown_ref(state: ServiceState, ref: str | None) -> str | None:
    """A model or spec reference as answers show it: names as they are, paths relative to the home."""
    return shown(ref, state.config) if ref is not None and Path(ref).is_absolute() else ref


def _upload_name(filename: str | None) -> str:
    """The uploaded file's own name, refused unless a file system can store it as given."""
    name = (filename or "data").replace("\\", "/").rsplit("/", 1)[-1]
    size = len(name.encode("utf-8", errors="replace"))
    if not 0 < size <= MAX_NAME_BYTES or "\x00" in name or name in (".", ".."):
        raise ValueError(BAD_UPLOAD_NAME.format(limit=MAX_NAME_BYTES, size=size))
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        raise ValueError(BAD_UPLOAD_SUFFIX.format(name=name, suffixes=", ".join(UPLOAD_SUFFIXES)))
    return name


def _create(
    state: ServiceState, body: schemas.ProjectCreate, principal: str, data_file: Path | None = None
) -> schemas.Project:
    model = project_setup.check_model(body.model, state.config)
    settings = project_setup.check_settings(body.settings)
    staging = state.config.home / "specs" / uuid.uuid4().hex[:12]
    if body.dataset.spec is not None:
        spec_ref = project_setup.shipped_spec(body.dataset.spec)
    else:
        spec_ref = project_setup.inline_spec(body.dataset.inline or {}, folder=staging, config=state.config,
                                             data_file=data_file)
    record = create_project(state.db, name=body.name, model_ref=model, spec_ref=spec_ref, settings=settings,
                            artifacts_root=state.config.home, created_by=principal)
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
    target = state.config.uploads / uuid.uuid4().hex[:12] / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(data.file, out)
    return _create(state, body, principal, data_file=target)


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
