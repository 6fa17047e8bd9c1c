"""The bearer authentication, written into the OpenAPI document that BentoML serves at /docs.json.

BentoML builds /docs.json from its own routes (/metrics, health checks) and the mounted REST app, and
knows nothing of the token check that wraps them. This middleware adds the `bearer` security scheme,
marks every operation but the health checks as needing it, and documents their 401 answer, so that
clients and fuzzers read what the service really does.
"""

from __future__ import annotations

import json
from typing import Any

from editing_service.api.security import OPEN_PATHS, ASGIApp, Message, Receive, Scope, Send

DOCS_PATH = "/docs.json"
SCHEME = "bearer"
UNAUTHORIZED = {
    "description": "No bearer token, or one that is not valid",
    "content": {"application/json": {"schema": {
        "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}},
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def document_bearer_auth(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the bearer scheme, each protected operation's `security` and its 401 answer."""
    document.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http", "scheme": "bearer",
        "description": "`Authorization: Bearer <token>`; tokens and their roles come from "
                       "EDITING_SERVICE_API_TOKENS and, when enabled, from /v1/tokens",
    }
    for path, item in document.get("paths", {}).items():
        if path in OPEN_PATHS:
            continue
        for method, operation in item.items():
            if method in METHODS and isinstance(operation, dict):
                operation["security"] = [{SCHEME: []}]
                operation.setdefault("responses", {}).setdefault("401", UNAUTHORIZED)
    return document


class OpenAPIAuthMiddleware:
    """Rewrites the /docs.json answer with `document_bearer_auth`; every other request passes untouched."""

    def __init__(self, app: ASGIApp, **_: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != DOCS_PATH:
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start.get("status") == 200:
                body = json.dumps(document_bearer_auth(json.loads(body))).encode()
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)
