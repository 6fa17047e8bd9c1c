"""The reviewer's workbench: a static single-page app served at /ui/ by the same service.

The pages are plain HTML, CSS and JavaScript modules shipped as package data (no Node build); they call
the /v1 API with the bearer token the reviewer signs in with, kept in the tab's sessionStorage and sent
only in the Authorization header. Every response carries a Content-Security-Policy that allows scripts
and styles from this origin only, so text from data, users or models can never run as code even if a
page forgot to escape it (the pages write such text with `textContent`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response of the workbench."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_workbench_app() -> Starlette:
    """The static app (mounted at /ui by the BentoML service); `/` serves index.html."""
    return Starlette(routes=[Mount("/", app=StaticFiles(directory=STATIC, html=True))],
                     middleware=[Middleware(SecurityHeaders)])
