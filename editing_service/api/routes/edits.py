"""Edits: ablate flagged features and retrain the head (a job), then the report, the model, predictions."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.params import EditId, ProjectId
from editing_service.api.routes.jobs import job_view
from editing_service.api.state import ServiceState, get_principal, get_state
from editing_service.artifacts import ArtifactDir
from editing_service.report.schema import Report
from editing_service.roles import Permission
from editing_service.store import (
    Conflict,
    Invalid,
    count_features,
    create_edit,
    delete_edit,
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
MODEL_MISSING = "The {which} model of edit {edit!r} is missing on disk; its artifacts were removed."
ARCHIVE_CHUNK = 1 << 20
TEXT_TOO_LONG = "Text {i} has {n} characters; at most {limit} per text (EDITING_SERVICE_PREDICT_MAX_TEXT_CHARS)."
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


def _flag_snapshot(state: ServiceState, project_id: str, body: schemas.EditCreate) -> tuple[list[dict] | None, str]:
    if body.features is None:  # the store snapshots them, in the transaction that binds the discovery
        spurious = [f for f in list_flags(state.db, project_id, current=True) if f.state == "spurious"]
        if not spurious and not any(f.state == "spurious" for f in list_flags(state.db, project_id)):
            raise Conflict(NOTHING_FLAGGED.format(project=project_id))
        return None, POLICY_CURRENT.format(n=len(spurious))
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
    """Queue an edit of the current spurious flags (or an explicit list of features), made on the current
    discovery (recorded as its discovery_id). 409 while a spurious flag needs review after a
    re-discovery (set it again or clear it); 429 when the caller's job quota is spent (shared by every
    replica)."""
    project = get_project(state.db, project_id)
    if count_features(state.db, project_id) == 0:
        raise Conflict(NOT_DISCOVERED.format(project=project_id))
    flags, policy = _flag_snapshot(state, project_id, body)
    edit, job = create_edit(state.db, project_id=project.id, flags=flags, policy=policy, spurious_only=True,
                            created_by=principal, quota=state.quota)
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


@router.get(EditPath + "/report", response_model=Report, openapi_extra=needs(Permission.read))
def report(project_id: ProjectId, edit_id: EditId, state: ServiceState = Depends(get_state)) -> Report:
    """The report (its typed schema): every row's metrics, the flags applied and how they were chosen."""
    return Report.read(_finished(state, project_id, edit_id, "report").report_json)


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
        return ArtifactDir(get_edit_folders(state.db, project_id, edit_id).discovery_dir).original_model
    return _finished(state, project_id, edit_id, "edited model").edited_model


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while block := handle.read(ARCHIVE_CHUNK):
            yield block


@router.get(EditPath + "/model", response_model=None, responses=ARCHIVE, openapi_extra=needs(Permission.read))
def download(
    project_id: ProjectId, edit_id: EditId,
    which: Annotated[Literal["edited", "original"], Query()] = "edited",
    state: ServiceState = Depends(get_state),
) -> StreamingResponse:
    """The edited (or original) model folder as a .tar.gz; load it with `editing_service.load_model`.

    The archive is built in an anonymous temporary file (no name on disk), so that nothing is left
    behind whether the download fails, the client goes away or the server is killed."""
    folder = model_folder(state, project_id, edit_id, which)
    if not folder.is_dir():
        raise Conflict(MODEL_MISSING.format(which=which, edit=edit_id))
    handle = tempfile.TemporaryFile()
    try:
        with tarfile.open(fileobj=handle, mode="w:gz") as archive:
            archive.add(folder, arcname=f"{edit_id}-{which}")
        size = handle.tell()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    name = f"{edit_id}-{which}.tar.gz"
    return StreamingResponse(_chunks(handle), media_type="application/gzip", headers={
        "content-disposition": f'attachment; filename="{name}"', "content-length": str(size)})


@router.delete(EditPath, status_code=204, openapi_extra=needs(Permission.delete))
def delete(project_id: ProjectId, edit_id: EditId, state: ServiceState = Depends(get_state),
           principal: str = Depends(get_principal)) -> Response:
    """Delete a finished edit with its models and reports (409 while its job is queued or running:
    cancel it first). The deletion is recorded in the project's events."""
    shutil.rmtree(delete_edit(state.db, project_id, edit_id, principal=principal), ignore_errors=True)
    return Response(status_code=204)


@router.post(EditPath + "/predict", response_model=schemas.PredictResponse,
             openapi_extra=needs(Permission.predict))
async def predict(
    project_id: ProjectId, edit_id: EditId, body: schemas.PredictRequest, state: ServiceState = Depends(get_state),
) -> schemas.PredictResponse:
    """Labels and probabilities from the edited model (or the original, for comparison); requests arriving
    together are batched."""
    if len(body.texts) > state.config.max_predict_texts:
        raise Invalid(TOO_MANY_TEXTS.format(limit=state.config.max_predict_texts, n=len(body.texts)))
    limit = state.config.max_predict_text_chars
    for i, text in enumerate(body.texts):
        if len(text) > limit:
            raise Invalid(TEXT_TOO_LONG.format(i=i, n=len(text), limit=limit))
    folder = model_folder(state, project_id, edit_id, body.model)
    classes, proba = await state.batcher.predict_proba(folder, body.texts)
    return schemas.PredictResponse(model=body.model, classes=classes,
                                   labels=[classes[i] for i in proba.argmax(1)],
                                   probabilities=proba.round(6).tolist())
