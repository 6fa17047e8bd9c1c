"""Schemathesis against the running service's /docs.json, on a small fixed budget (benchmarks/fuzz.py runs a
larger one): with an admin token and with none, no 5xx, no answer outside the documented schema, and
without a token every route but the health checks refuses (401)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_world import make_world
from fuzzing import fuzz, openapi_document
from http_server import ServerProcess

from editing_service.roles import Permission

ADMIN = "tok-root"
EXAMPLES = 4  # per operation, valid and (where a request can break the schema) invalid
SEED = 20261130


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = make_world(tmp_path_factory.mktemp("fuzz"))
    server = ServerProcess(root, env={"EDITING_SERVICE_API_TOKENS": f"root={ADMIN}",
                                      "EDITING_SERVICE_DATABASE_TOKENS": "1"}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("token", [ADMIN, None], ids=["admin", "no-token"])
def test_fuzzing_finds_no_5xx_and_no_schema_violation(fuzzed: ServerProcess, token: str | None) -> None:
    document = openapi_document(fuzzed.url, ADMIN)
    counts = fuzz(fuzzed.url, document, token=token, examples=EXAMPLES, seed=SEED)
    operations = sum(len(item) for item in document["paths"].values())
    assert counts.operations == operations and counts.requests >= operations
    assert (counts.server_errors, counts.schema_violations, counts.not_refused) == (0, 0, 0), counts.examples


def test_the_document_says_which_routes_need_a_token(fuzzed: ServerProcess) -> None:
    document = openapi_document(fuzzed.url, ADMIN)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            protected = path not in ("/livez", "/readyz", "/healthz")
            assert (operation.get("security") == [{"bearer": []}]) == protected, path
            assert ("401" in operation["responses"]) == protected, path
            if path.startswith("/v1/"):
                assert operation["x-permission"] in {p.value for p in Permission}, path


def test_a_line_break_in_the_path_gets_a_json_422(fuzzed: ServerProcess) -> None:
    url = fuzzed.url + "/v1/projects/a%0Ab/features/s/1/flag"
    answer = httpx.put(url, json={}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 422 and "line break" in answer.json()["detail"]
    assert httpx.put(url, json={}).status_code == 401
