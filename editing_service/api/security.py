"""Security at the edge: bearer tokens, request size limits and unroutable URL paths (file paths:
`editing_service.api.paths`).

Both middlewares are plain ASGI so they wrap every route of the BentoML server (its own routes and
the mounted FastAPI app) alike; only the health checks and the workbench's static files pass without a
token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from editing_service.api.principals import PrincipalResolver
from editing_service.config import ServiceConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
# The workbench's static files (HTML, CSS, JS: no data) load without a token; the page then calls /v1
# with the token the reviewer signs in with.
WORKBENCH_PREFIX = "/ui"
MISSING_TOKEN = "Missing bearer token: send the header `Authorization: Bearer <token>`."
BAD_TOKEN = "The bearer token is not valid."
LINE_BREAK_IN_PATH = "Invalid request: the URL path contains a line break (%0A); no route has one."
TOO_LARGE = "Request body is larger than the limit of {limit} bytes."


async def send_error(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def _is_workbench(path: str) -> bool:
    return path == WORKBENCH_PREFIX or path.startswith(WORKBENCH_PREFIX + "/")


class BearerAuthMiddleware:
    """Refuses (401) every HTTP request without a valid bearer token, except health checks and the
    workbench's static files.

    The token's principal (name and role, see roles.py) is put in `scope["state"]["principal"]`; what it
    may do is checked by the REST app's one authorization dependency (access.py).
    """

    def __init__(self, app: ASGIApp, config: ServiceConfig | None = None) -> None:
        self.app = app
        self.resolver = PrincipalResolver(config or ServiceConfig.from_env())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or _is_workbench(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        if raw is None:
            await send_error(send, 401, MISSING_TOKEN, [(b"www-authenticate", b"Bearer")])
            return
        token = bearer_token(raw.decode("latin-1"))
        principal = None if token is None else self.resolver.configured_principal(token)
        if principal is None and token is not None and self.resolver.uses_database:
            principal = await anyio.to_thread.run_sync(self.resolver.database_principal, token)
        if principal is None:
            await send_error(send, 401, BAD_TOKEN, [(b"www-authenticate", b'Bearer error="invalid_token"')])
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["principals"] = self.resolver
        await self.app(scope, receive, send)


class PathCheckMiddleware:
    """Refuses (422, JSON) a URL path with a line break (%0A): BentoML's router cannot match one to the
    REST app's mount and would answer in plain text. Other invalid path values reach the routes, whose
    typed parameters refuse them."""

    def __init__(self, app: ASGIApp, **_: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\n" in scope["path"]:
            await send_error(send, 422, LINE_BREAK_IN_PATH)
            return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuses (413) request bodies over the limit: by Content-Length before reading, or, for a body sent
    without one (chunked), as soon as the bytes read pass the limit. Then the app sees the client gone
    and whatever it answers is dropped: the 413 has been sent."""

    def __init__(self, app: ASGIApp, config: ServiceConfig | None = None) -> None:
        self.app = app
        self.limit = (config or ServiceConfig.from_env()).max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await send_error(send, 413, TOO_LARGE.format(limit=self.limit))
            return
        seen = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal seen, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    if not started:
                        started = True
                        await send_error(send, 413, TOO_LARGE.format(limit=self.limit))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
