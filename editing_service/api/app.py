"""The FastAPI app of the REST API (mounted at /v1 by the BentoML service)."""

from __future__ import annotations

from fastapi import FastAPI

from editing_service.api.errors import install_error_handlers
from editing_service.api.routes import discoveries, edits, features, jobs, projects
from editing_service.api.schemas import ErrorBody

ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429)}


def create_app() -> FastAPI:
    app = FastAPI(
        title="editing-service",
        description="Find the features a text classifier relies on, flag the spurious ones, ablate them "
        "(SHIFT), retrain the head, and serve the edited model with bias and accuracy reports.",
        responses=ERRORS,
    )
    for module in (projects, jobs, discoveries, features, edits):
        app.include_router(module.router)
    install_error_handlers(app)
    return app
