"""Schemathesis against the running service's /docs.json, on a small fixed budget (benchmarks/fuzz.py runs a
larger one): with an admin token and with none, no 5xx, no answer outside the documented schema, and
without a token every route but the health checks refuses (401)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from api_world import make_world
from fuzzing import HEAD_LIMIT, fuzz, longest_request_target, openapi_document
from http_server import ServerProcess

from editing_service.roles import Permission

ADMIN = "tok-root"
HEADERS_ROOM = 4096  # bytes of the request head left to headers (Host, Authorization, a browser's own)
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


def test_every_request_the_document_allows_fits_the_http_servers_request_head(fuzzed: ServerProcess) -> None:
    document = openapi_document(fuzzed.url, ADMIN)
    longest = {f"{method.upper()} {path}": longest_request_target(document, path, method)
               for path, item in document["paths"].items() for method in item}
    too_long = {name: size for name, size in longest.items() if size > HEAD_LIMIT - HEADERS_ROOM}
    assert not too_long, too_long
    assert 8000 < longest["DELETE /v1/projects/{project_id}/features/{site}/{feature}/flag"] < 10000


def _send_in_pieces(url: str, target: str, token: str) -> tuple[int, str, bytes]:
    """Send a request head 1 KiB at a time, as a slow network delivers it; the status, content type and body."""
    head = f"DELETE {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as connection:
        data = head.encode()
        for start in range(0, len(data), 1024):
            connection.sendall(data[start:start + 1024])
            time.sleep(0.005)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    content_type = next((line.split(b":", 1)[1].strip().decode() for line in headers.split(b"\r\n")
                         if line.lower().startswith(b"content-type:")), "")
    return int(status_line.split()[1]), content_type, body


def test_the_longest_valid_clear_flag_request_reaches_the_service_when_it_arrives_in_pieces(
        fuzzed: ServerProcess) -> None:
    """Its rationale and reviewer at their documented maxima, in 4-byte characters: the service answers
    (the project does not exist) in JSON; the HTTP parser does not refuse the head in plain text."""
    document = openapi_document(fuzzed.url, ADMIN)
    limits = {p["name"]: p["schema"]["maxLength"] for p in
              document["paths"]["/v1/projects/{project_id}/features/{site}/{feature}/flag"]["delete"]["parameters"]
              if p["in"] == "query"}
    query = urlencode({name: "\U0001F600" * size for name, size in limits.items()})
    target = f"/v1/projects/{'p' * 64}/features/{'s' * 200}/{2**31 - 1}/flag?{query}"
    assert len(target) > 8000
    status, content_type, body = _send_in_pieces(fuzzed.url, target, ADMIN)
    assert (status, content_type) == (404, "application/json"), body[:200]
