"""Edits: ablate flagged features and retrain the head (a job), then the report, the model, predictions."""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from starlette.background import BackgroundTask

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.params import EditId, ProjectId
from editing_service.api.routes.jobs import job_view
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.artifacts import ArtifactDir
from editing_service.roles import Permission
from editing_service.store import (
    Conflict,
    Invalid,
    count_features,
    create_edit,
    get_edit,
    get_edit_folders,
    get_feature,
    get_project,
    list_edits,
    list_flags,
)

router = APIRouter(tags=["edits"])
EditPath = "/projects/{project_id}/edits/{edit_id}"

NOT_DISCOVERED = "Project {project!r} has no discovered features yet: run a discover job first."
NOTHING_FLAGGED = "Project {project!r} has no feature flagged spurious, so there is nothing to ablate."
NOT_READY = "Edit {edit!r} is {status}; its {what} exists once its job has succeeded."
TOO_MANY_TEXTS = "At most {limit} texts per request, got {n}."
POLICY_CURRENT = "Flags set by reviewers through the API ({n} spurious), snapshotted when the edit was created."
POLICY_EXPLICIT = "An explicit list of {n} features given by {reviewer} when the edit was created."
# Errors of the HTML and archive routes are JSON like every other route's: the 200 media type is
# documented here rather than as their response_class, which would document the errors with it.
HTML_PAGE = {200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "the report"}}
MARKDOWN = {200: {"content": {"text/markdown": {"schema": {"type": "string"}}}, "description": "the model card"}}
ARCHIVE = {200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
                 "description": "the model folder as .tar.gz"}}


def edit_view(record: object) -> schemas.Edit:
    return schemas.Edit.model_validate(record, from_attributes=True)


def _flag_snapshot(state: ServiceState, project_id: str, body: schemas.EditCreate) -> tuple[list[dict], str]:
    if body.features is None:
        flags = [f for f in list_flags(state.db, project_id) if f.state == "spurious"]
        if not flags:
            raise Conflict(NOTHING_FLAGGED.format(project=project_id))
        rows = [f.snapshot() for f in flags]
        return rows, POLICY_CURRENT.format(n=len(rows))
    if not body.features:
        raise Invalid(NOTHING_FLAGGED.format(project=project_id))
    for ref in body.features:
        get_feature(state.db, project_id, ref.site, ref.feature)  # NotFound names an unknown feature
    rows = [{"site": ref.site, "feature": ref.feature, "state": "spurious", "rationale": body.rationale,
             "reviewer": body.reviewer, "source": "person"} for ref in body.features]
    return rows, POLICY_EXPLICIT.format(n=len(rows), reviewer=body.reviewer)


@router.post("/projects/{project_id}/edits", status_code=202, response_model=schemas.EditCreated,
             openapi_extra=needs(Permission.edit))
def create(project_id: ProjectId, body: schemas.EditCreate, state: ServiceState = Depends(get_state),
           principal: str = Depends(get_principal)) -> schemas.EditCreated:
    """Queue an edit of the current spurious flags (or an explicit list of features)."""
    project = get_project(state.db, project_id)
    state.quota.check(principal)
    if count_features(state.db, project_id) == 0:
        raise Conflict(NOT_DISCOVERED.format(project=project_id))
    flags, policy = _flag_snapshot(state, project_id, body)
    edit, job = create_edit(state.db, project_id=project.id, flags=flags, policy=policy, created_by=principal)
    state.quota.record(principal)
    return schemas.EditCreated(edit=edit_view(edit), job=job_view(job))


@router.get("/projects/{project_id}/edits", response_model=schemas.EditList,
            openapi_extra=needs(Permission.read))
def list_all(project_id: ProjectId, state: ServiceState = Depends(get_state)) -> schemas.EditList:
    get_project(state.db, project_id)
    return schemas.EditList(items=[edit_view(e) for e in list_edits(state.db, project_id)])


@router.get(EditPath, response_model=schemas.Edit, openapi_extra=needs(Permission.read))
def get(project_id: ProjectId, edit_id: EditId, state: ServiceState = Depends(get_state)) -> schemas.Edit:
    return edit_view(get_edit(state.db, project_id, edit_id))


def _finished(state: ServiceState, project_id: str, edit_id: str, what: str) -> ArtifactDir:
    """The edit's output folder, once its job has succeeded."""
    folders = get_edit_folders(state.db, project_id, edit_id)
    if folders.status != "succeeded":
        raise Conflict(NOT_READY.format(edit=edit_id, status=folders.status, what=what))
    return ArtifactDir(folders.out_dir)


@router.get(EditPath + "/report", openapi_extra=needs(Permission.read))
def report(project_id: ProjectId, edit_id: EditId, state: ServiceState = Depends(get_state)) -> dict:
    """The report as JSON: every row's metrics, the flags applied and how they were chosen."""
    return json.loads(_finished(state, project_id, edit_id, "report").report_json.read_text())


@router.get(EditPath + "/report.html", response_model=None, responses=HTML_PAGE,
            openapi_extra=needs(Permission.read))
def report_html(project_id: ProjectId, edit_id: EditId, state: ServiceState = Depends(get_state)) -> HTMLResponse:
    """The self-contained HTML report."""
    return HTMLResponse(_finished(state, project_id, edit_id, "report").report_html.read_text())


@router.get(EditPath + "/model_card.md", response_model=None, responses=MARKDOWN,
            openapi_extra=needs(Permission.read))
def model_card(project_id: ProjectId, edit_id: EditId, state: ServiceState = Depends(get_state)) -> PlainTextResponse:
    """The edited model's card (Markdown), as shipped in the model's folder."""
    card = _finished(state, project_id, edit_id, "model card").edited_model / "README.md"
    return PlainTextResponse(card.read_text(), media_type="text/markdown",
                             headers={"content-disposition": f'attachment; filename="{edit_id}-model-card.md"'})


def model_folder(state: ServiceState, project_id: str, edit_id: str, which: str) -> Path:
    """The folder of the edited model (once its job has succeeded) or of the original: one light query,
    the same for both, as every predict request makes it."""
    if which == "original":
        return ArtifactDir(get_edit_folders(state.db, project_id, edit_id).project_dir).original_model
    return _finished(state, project_id, edit_id, "edited model").edited_model


@router.get(EditPath + "/model", response_model=None, responses=ARCHIVE, openapi_extra=needs(Permission.read))
def download(
    project_id: ProjectId, edit_id: EditId,
    which: Annotated[Literal["edited", "original"], Query()] = "edited",
    state: ServiceState = Depends(get_state),
) -> FileResponse:
    """The edited (or original) model folder as a .tar.gz; load it with `editing_service.load_model`."""
    folder = model_folder(state, project_id, edit_id, which)
    handle = tempfile.NamedTemporaryFile(suffix=".tar.gz", delete=False)
    with tarfile.open(fileobj=handle, mode="w:gz") as archive:
        archive.add(folder, arcname=f"{edit_id}-{which}")
    handle.close()
    return FileResponse(handle.name, media_type="application/gzip", filename=f"{edit_id}-{which}.tar.gz",
                        background=BackgroundTask(Path(handle.name).unlink, missing_ok=True))


@router.post(EditPath + "/predict", response_model=schemas.PredictResponse,
             openapi_extra=needs(Permission.predict))
async def predict(
    project_id: ProjectId, edit_id: EditId, body: schemas.PredictRequest, state: ServiceState = Depends(get_state),
) -> schemas.PredictResponse:
    """Labels and probabilities from the edited model (or the original, for comparison); requests arriving
    together are batched."""
    if len(body.texts) > state.config.max_predict_texts:
        raise Invalid(TOO_MANY_TEXTS.format(limit=state.config.max_predict_texts, n=len(body.texts)))
    folder = model_folder(state, project_id, edit_id, body.model)
    classes, proba = await state.batcher.predict_proba(folder, body.texts)
    return schemas.PredictResponse(model=body.model, classes=classes,
                                   labels=[classes[i] for i in proba.argmax(1)],
                                   probabilities=proba.round(6).tolist())
