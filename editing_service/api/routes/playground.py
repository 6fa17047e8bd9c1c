"""The playground: one text through the original and the edited model, and where the ablated features fire."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from editing_service.api import schemas
from editing_service.api.access import needs
from editing_service.api.explain import ablated_feature_activations
from editing_service.api.params import EditId, ProjectId
from editing_service.api.routes.edits import EditPath, model_folder
from editing_service.api.state import ServiceState, get_state
from editing_service.roles import Permission
from editing_service.store import NotFound, get_feature

router = APIRouter(tags=["edits"])
DIGITS = 4


@router.post(EditPath + "/explain", response_model=schemas.ExplainResponse, openapi_extra=needs(Permission.read))
async def explain(
    project_id: ProjectId, edit_id: EditId, body: schemas.ExplainRequest, state: ServiceState = Depends(get_state),
) -> schemas.ExplainResponse:
    """Both models' predictions on `text`, and each ablated feature's activation on every token."""
    edited_folder = model_folder(state, project_id, edit_id, "edited")
    original_folder = model_folder(state, project_id, edit_id, "original")
    classes, edited_proba = await state.batcher.predict_proba(edited_folder, [body.text])
    _, original_proba = await state.batcher.predict_proba(original_folder, [body.text])
    original, edited = await asyncio.gather(asyncio.to_thread(state.batcher.cache.get, original_folder),
                                            asyncio.to_thread(state.batcher.cache.get, edited_folder))
    tokens, activations = await state.batcher.run_on_forward_thread(
        ablated_feature_activations, original, edited, body.text)
    features = [
        schemas.TokenActivations(id=f"{site}/{feature}", site=site, feature=feature,
                                 label=_label(state, project_id, site, feature),
                                 values=[round(float(v), DIGITS) + 0.0 for v in values])
        for (site, feature), values in activations.items()
    ]
    features.sort(key=lambda f: -max(f.values, default=0.0))
    return schemas.ExplainResponse(
        classes=classes, tokens=tokens,
        original=_prediction(classes, original_proba[0]), edited=_prediction(classes, edited_proba[0]),
        features=features,
    )


def _prediction(classes: list[str], proba: object) -> schemas.Prediction:
    values = [round(float(p), 6) for p in proba]
    return schemas.Prediction(label=classes[max(range(len(values)), key=values.__getitem__)], probabilities=values)


def _label(state: ServiceState, project_id: str, site: str, feature: int) -> str | None:
    try:
        return get_feature(state.db, project_id, site, feature).label
    except NotFound:
        return None
