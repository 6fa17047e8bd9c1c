"""Request metrics and the access log, keyed by route template so neither grows with what clients send.

BentoML's own traffic metrics and access log label each request with its raw URL path: every unknown
path a client (even one without a token) invents adds a set of series to /metrics, and a decoded
`%0A` in a path starts a new line in the log. Both are switched off in the service's configuration
and replaced here: series are labelled by the route template (`/v1/jobs/{job_id}`), every path no
route matches shares the label `unmatched`, methods outside the standard set share `other`, and the
access log escapes control characters. With BentoML's metrics off, `MetricsEndpoint` serves /metrics
(behind the bearer token, as every route but the health checks), collected over all worker processes.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable

import anyio
from starlette.routing import compile_path

from editing_service.api.security import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# BentoML's own routes of a service with one ASGI app mounted (health checks, metrics, OpenAPI, docs UI).
SYSTEM_ROUTES = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json", "/", "/docs"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

access_log = logging.getLogger("bentoml.access")
_metrics: dict[str, object] = {}


def escape(text: str) -> str:
    """`text` with control characters (newlines included) written as \\xNN: one log record, one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _instruments() -> dict[str, object]:
    """The process's metrics, made on first use (after BentoML has set up multiprocess collection)."""
    if not _metrics:
        from prometheus_client import Counter, Gauge, Histogram

        labels = ["method", "route", "status"]
        _metrics["total"] = Counter("editing_service_requests_total", "HTTP requests answered", labels)
        _metrics["seconds"] = Histogram("editing_service_request_duration_seconds",
                                        "time to answer an HTTP request", labels)
        _metrics["active"] = Gauge("editing_service_requests_in_progress", "HTTP requests being answered",
                                   ["method", "route"], multiprocess_mode="livesum")
    return _metrics


class RouteTemplates:
    """Maps a request path to the template of the route that serves it, or `UNMATCHED`."""

    def __init__(self, templates: Iterable[str], prefix: str) -> None:
        self.prefix = prefix
        self.patterns = [(compile_path(t)[0], prefix + t) for t in templates if t]

    def __call__(self, scope: Scope) -> str:
        path = scope["path"]
        if path in SYSTEM_ROUTES:
            return path
        if path.startswith(self.prefix + "/"):
            inner = path[len(self.prefix):]
            for pattern, template in self.patterns:
                if pattern.match(inner):
                    return template
        return UNMATCHED


class RequestObserver:
    """Counts and times every HTTP request by (method, route template, status) and writes its access log
    line; outermost of the service's middlewares, so refused requests are counted too."""

    def __init__(self, app: ASGIApp, templates: Iterable[str] = (), prefix: str = "/v1") -> None:
        self.app = app
        self.template = RouteTemplates(templates, prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        metrics = _instruments()
        status = 500
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        active = metrics["active"].labels(method=method, route=route)  # type: ignore[attr-defined]
        active.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            active.dec()
            seconds = time.perf_counter() - started
            labels = {"method": method, "route": route, "status": str(status)}
            metrics["total"].labels(**labels).inc()  # type: ignore[attr-defined]
            metrics["seconds"].labels(**labels).observe(seconds)  # type: ignore[attr-defined]
            if route not in ("/livez", "/readyz", "/healthz", "/metrics"):
                self._log(scope, status, seconds)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client") or ("-", 0)
        query = scope.get("query_string", b"").decode("latin-1")
        target = escape(scope["path"] + (f"?{query}" if query else ""))
        access_log.info('%s:%s "%s %s" %s %.1fms', client[0], client[1], escape(scope["method"]), target,
                        status, seconds * 1000)


def scrape() -> tuple[bytes, str]:
    """The exposition text of every metric of the service's processes, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsEndpoint:
    """Answers GET /metrics with `scrape()`; add it inside the bearer-token middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/metrics" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body, content_type = await anyio.to_thread.run_sync(scrape)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
