"""Errors as HTTP answers: every known problem is a 4xx with a sentence naming it, never a traceback,
and never an absolute server path (paths are shown relative to the service home)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from editing_service.shown_paths import redact
from editing_service.store import Conflict, Invalid, NotFound, QuotaExceeded

logger = logging.getLogger(__name__)

INTERNAL = "Internal error while handling {method} {path}; the server log has the details."

STATUS_BY_ERROR: list[tuple[type[BaseException], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 400),
    (PermissionError, 403),
    (FileNotFoundError, 400),
    (ValueError, 400),
]


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def _answer(request: Request, detail: str, status: int) -> JSONResponse:
    state = getattr(request.app.state, "service", None)
    if state is not None:
        detail = redact(detail, state.config.home)
    return JSONResponse({"detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return _answer(request, _validation_message(err), 422)

    async def _known(request: Request, err: Exception) -> JSONResponse:
        status = next(code for kind, code in STATUS_BY_ERROR if isinstance(err, kind))
        return _answer(request, str(err), status)

    for kind, _status in STATUS_BY_ERROR:
        app.add_exception_handler(kind, _known)

    @app.exception_handler(QuotaExceeded)
    async def _too_many(request: Request, err: QuotaExceeded) -> JSONResponse:
        answer = _answer(request, str(err), 429)
        answer.headers["Retry-After"] = str(err.retry_after)
        return answer

    @app.exception_handler(Exception)
    async def _internal(request: Request, _err: Exception) -> JSONResponse:
        logger.exception("Unhandled error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": INTERNAL.format(method=request.method, path=request.url.path)},
                            status_code=500)
