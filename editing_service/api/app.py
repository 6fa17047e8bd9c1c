"""The FastAPI app of the REST API (mounted at /v1 by the BentoML service)."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from editing_service.api.access import authorize, check_routes
from editing_service.api.errors import install_error_handlers
from editing_service.api.routes import (
    access,
    circuit,
    discoveries,
    edits,
    features,
    jobs,
    playground,
    projects,
    review,
)
from editing_service.api.schemas import ErrorBody

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429)}


def create_app() -> FastAPI:
    app = FastAPI(
        title="editing-service",
        description="Find the features a text classifier relies on, flag the spurious ones, ablate them "
        "(SHIFT), retrain the head, and serve the edited model with bias and accuracy reports.",
        responses=ERRORS,
        dependencies=[Depends(authorize)],
    )
    for module in (access, projects, jobs, discoveries, features, circuit, review, edits, playground):
        app.include_router(module.router)
    check_routes(app)
    install_error_handlers(app)
    return app
