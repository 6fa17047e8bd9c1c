"""Schemathesis against a running service's own OpenAPI document (/docs.json), on a fixed budget.

Every operation gets `examples` generated requests of valid data and `examples` of invalid data
(Hypothesis, seeded, no time limit, no example database), sent with the given token or none. Counted:
requests, 5xx answers, schema violations (an undocumented status, content type or header, or a body
that does not match its documented schema; a 5xx counts as a server error only), and, without a token, answers other than 401 on routes
that are not health checks. A request whose head (request line and headers) is over the HTTP server's
limit may be refused by the server's HTTP parser, in plain text, before the service sees it: only
invalid requests can be that long (`longest_request_target`), and such a refusal is counted apart.
Used by tests/api/test_fuzz.py (small budget) and benchmarks/fuzz.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE

# uvicorn's h11 parser refuses a request head over this many bytes when the head arrives in pieces
HEAD_LIMIT = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
# a character percent-encoded: any character (4 UTF-8 bytes, each %XX), or one of a pattern's ASCII class
ANY_CHARACTER_BYTES, ASCII_CHARACTER_BYTES = 12, 3

OPEN_PATHS = ("/livez", "/readyz", "/healthz")
SCHEMA_CHECKS = (status_code_conformance, content_type_conformance, response_headers_conformance,
                 response_schema_conformance)
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
KEPT_EXAMPLES = 5


@dataclass
class FuzzCounts:
    operations: int = 0
    requests: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    not_refused: int = 0  # without a token: answers other than 401 on routes that need one
    refused_by_parser: int = 0  # heads over HEAD_LIMIT that the HTTP parser refused (plain-text 400)
    examples: list[str] = field(default_factory=list)  # a few of the problems, to read

    def note(self, line: str) -> None:
        if len(self.examples) < KEPT_EXAMPLES:
            self.examples.append(line)

    @property
    def clean(self) -> bool:
        return not (self.server_errors or self.schema_violations or self.not_refused)


def openapi_document(base_url: str, token: str) -> dict[str, Any]:
    answer = httpx.get(base_url + "/docs.json", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    answer.raise_for_status()
    return answer.json()


def fuzz(base_url: str, document: dict[str, Any], *, token: str | None, examples: int, seed: int) -> FuzzCounts:
    """Send every operation `examples` valid and `examples` invalid requests; count what went wrong."""
    config = schemathesis.Config()
    # The document declares bearer auth; schemathesis would otherwise generate Authorization headers
    # itself, and "no token" must mean none. The token of a run is sent as a fixed header.
    config.projects.default.generation.with_security_parameters = False
    schema = schemathesis.openapi.from_dict(document, config=config)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    counts = FuzzCounts()
    for result in schema.get_all_operations():
        operation = result.ok()
        counts.operations += 1
        raw = document["paths"][operation.path][operation.method.lower()]
        for mode in MODES if _has_constraints(raw) else MODES[:1]:
            _fuzz_operation(operation, mode, base_url, headers, examples, seed, counts)
    return counts


def _has_constraints(operation: dict[str, Any]) -> bool:
    """Whether some request of the operation breaks its schema: it has a body, or a parameter that is
    not just any string (any string in the path is valid, so no invalid request exists)."""
    return "requestBody" in operation or any(
        set(p.get("schema", {})) - {"type", "title", "description"} or p.get("schema", {}).get("type") != "string"
        for p in operation.get("parameters", []))


def _fuzz_operation(operation: Any, mode: Any, base_url: str, headers: dict[str, str], examples: int, seed: int,
                    counts: FuzzCounts) -> None:
    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                         print_blob=False)
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=120)
        counts.requests += 1
        where = (f"{operation.method.upper()} {case.formatted_path} query={case.query or {}} ({mode.value}) "
                 f"-> {response.status_code}")
        if _head_bytes(response.request) > HEAD_LIMIT and response.status_code == 400 \
                and response.headers.get("content-type", "").startswith("text/plain"):
            counts.refused_by_parser += 1
            return
        if not headers and operation.path not in OPEN_PATHS and response.status_code != 401:
            counts.not_refused += 1
            sent = "with an Authorization header" if "authorization" in response.request.headers else "no header"
            counts.note(f"not refused without a token ({sent}): {where}")
        if response.status_code >= 500:  # counted once, as a server error (it is undocumented too)
            counts.server_errors += 1
            counts.note(f"5xx: {where} {response.text[:160]}")
            return
        try:
            case.validate_response(response, checks=list(SCHEMA_CHECKS), headers=headers)
        except (FailureGroup, Failure) as problem:
            counts.schema_violations += 1
            counts.note(f"schema: {where}: {_first_line(problem)}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # no invalid request exists (an operation without parameters)
        pass


def _head_bytes(request: Any) -> int:
    """Bytes of a sent request's head: request line, headers and the blank line."""
    line = len(f"{request.method} {request.path_url} HTTP/1.1\r\n".encode())
    return line + sum(len(f"{k}: {v}\r\n".encode()) for k, v in request.headers.items()) + 2


def longest_request_target(document: dict[str, Any], path: str, method: str) -> float:
    """Bytes of the longest request target (path and query string, percent-encoded) that the document
    allows for one operation; infinite when some parameter is unbounded."""
    operation = document["paths"][path][method]
    target = len(re.sub(r"\{[^}]+\}", "", path))
    for parameter in operation.get("parameters", []):
        if parameter["in"] not in ("path", "query"):
            continue
        value = _longest_value(parameter.get("schema", {}))
        target += value + (len(parameter["name"]) + 2 if parameter["in"] == "query" else 0)  # "&name="
    return target


def _longest_value(schema: dict[str, Any]) -> float:
    if "anyOf" in schema:
        return max(_longest_value(branch) for branch in schema["anyOf"])
    if "enum" in schema:
        return max(len(quote(str(value), safe="")) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return 0
    if kind == "boolean":
        return len("false")
    if kind == "integer":
        return max(len(str(schema.get(bound, -2**63))) for bound in ("minimum", "maximum"))
    if kind == "number":
        return len(repr(-1.7976931348623157e308))
    pattern = schema.get("pattern")
    per_character = ASCII_CHARACTER_BYTES if pattern else ANY_CHARACTER_BYTES
    if "maxLength" in schema:
        return schema["maxLength"] * per_character
    bounded = re.search(r"\{\d*,(\d+)\}\$$", pattern or "")
    return int(bounded.group(1)) * per_character if bounded else float("inf")


def _first_line(problem: BaseException) -> str:
    failures = problem.exceptions if isinstance(problem, FailureGroup) else [problem]
    text = "; ".join(f"{getattr(f, 'title', type(f).__name__)}: {getattr(f, 'message', f)}" for f in failures)
    return " ".join(text.split())[:300]

