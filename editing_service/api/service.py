"""The BentoML service: the REST API at /v1, the reviewer's workbench at /ui/, health routes, auth and size
limits on everything else.

    bentoml serve editing_service.api.service:EditingService
"""

from __future__ import annotations

import bentoml

from editing_service.api.app import create_app
from editing_service.api.observe import MetricsEndpoint, RequestObserver
from editing_service.api.openapi_auth import OpenAPIAuthMiddleware
from editing_service.api.security import BearerAuthMiddleware, BodySizeLimitMiddleware, PathCheckMiddleware
from editing_service.api.state import ServiceState
from editing_service.api.workbench import create_workbench_app
from editing_service.config import ServiceConfig

app = create_app()
workbench = create_workbench_app()


@bentoml.asgi_app(app, path="/v1")
@bentoml.asgi_app(workbench, path="/ui")
@bentoml.service(
    name="editing_service",
    resources={"gpu": 1},
    workers=1,
    traffic={"timeout": 600},
    # BentoML's metrics and access log key on the raw URL path; RequestObserver replaces both.
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
)
class EditingService:
    """Projects, jobs, features, flags and edits over REST; jobs run in this process's worker thread."""

    def __init__(self) -> None:
        self.state = ServiceState.start(ServiceConfig.from_env())
        app.state.service = self.state

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.state.stop()


ROUTE_TEMPLATES = [*app.openapi()["paths"], app.openapi_url, app.docs_url, app.redoc_url]
EditingService.add_asgi_middleware(RequestObserver, templates=ROUTE_TEMPLATES, prefix="/v1")
EditingService.add_asgi_middleware(OpenAPIAuthMiddleware)
EditingService.add_asgi_middleware(BodySizeLimitMiddleware)
EditingService.add_asgi_middleware(BearerAuthMiddleware)
EditingService.add_asgi_middleware(PathCheckMiddleware)
EditingService.add_asgi_middleware(MetricsEndpoint)
