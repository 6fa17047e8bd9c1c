"""Schemathesis against a running service's own OpenAPI document (/docs.json), on a fixed budget.

Every operation gets `examples` generated requests of valid data and `examples` of invalid data
(Hypothesis, seeded, no time limit, no example database), sent with the given token or none. Counted:
requests, 5xx answers, schema violations (an undocumented status, content type or header, or a body
that does not match its documented schema; a 5xx counts as a server error only), and, without a token, answers other than 401 on routes
that are not health checks. Used by tests/api/test_fuzz.py (small budget) and benchmarks/fuzz.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def _first_line(problem: BaseException) -> str:
    failures = problem.exceptions if isinstance(problem, FailureGroup) else [problem]
    text = "; ".join(f"{getattr(f, 'title', type(f).__name__)}: {getattr(f, 'message', f)}" for f in failures)
    return " ".join(text.split())[:300]

