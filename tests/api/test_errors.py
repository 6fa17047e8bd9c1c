"""Auth refusals and bad input: each gets its 4xx with a sentence naming the problem, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from api_world import TINY_SETTINGS, spec_for
from http_server import TOKENS, ServerProcess

from editing_service.client import APIError, EditingClient


def test_health_is_open_everything_else_needs_a_token(server: ServerProcess) -> None:
    for path in ("/livez", "/readyz", "/healthz"):
        assert httpx.get(server.url + path).status_code == 200
    for path in ("/v1/projects", "/docs.json", "/metrics"):
        missing = httpx.get(server.url + path)
        assert missing.status_code == 401 and "Missing bearer token" in missing.json()["detail"]
        wrong = httpx.get(server.url + path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "The bearer token is not valid."
    docs = httpx.get(server.url + "/docs.json", headers={"Authorization": f"Bearer {TOKENS['ana']}"})
    assert docs.status_code == 200
    paths = docs.json()["paths"]
    for route in ("/v1/projects", "/v1/jobs/{job_id}", "/v1/projects/{project_id}/features",
                  "/v1/projects/{project_id}/edits/{edit_id}/predict", "/v1/projects/{project_id}/audit"):
        assert route in paths, sorted(paths)


def _status(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(APIError) as info:
        call(*args, **kwargs)
    return info.value.status, info.value.detail


def test_bad_projects_are_refused(ana: EditingClient, server: ServerProcess, tmp_path: Path) -> None:
    root = server.root
    spec = spec_for(root)
    cases = [
        ({"model": str(tmp_path)}, 403, "outside the allowed roots"),
        ({"model": str(root / "models" / "missing")}, 400, "does not exist"),
        ({"dataset": {"spec": "no_such_spec"}}, 400, "No shipped dataset spec is called 'no_such_spec'"),
        ({"dataset": {"inline": {**spec, "text_column": "bio"}}}, 400, "bio"),
        ({"dataset": {"inline": {**spec, "source": {"kind": "file", "path": str(tmp_path / "x.csv")}}}}, 403,
         "outside the allowed roots"),
        ({"dataset": {"inline": {**spec, "labels": ["nurse"]}}}, 400, "at least two classes"),
        ({"settings": {"sae": {"d_sae": 0}}}, 400, "sae.d_sae"),
        ({"settings": {"spec": "x"}}, 400, "must not set spec"),
    ]
    for change, status, words in cases:
        body = {"name": "bad", "model": str(root / "models" / "bert"), "dataset": {"inline": spec},
                "settings": TINY_SETTINGS, **change}
        got = _status(ana.create_project, **body)
        assert got[0] == status and words in got[1], (change, got)


def test_bad_requests_get_4xx(ana: EditingClient, server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['ana']}"}
    url = server.url + "/v1"
    assert _status(ana.project, "nope") == (404, "Project 'nope' does not exist.")
    assert _status(ana.job, "nope")[0] == 404
    malformed = httpx.post(url + "/projects", content=b"{not json", headers={**headers,
                           "content-type": "application/json"})
    assert malformed.status_code == 422 and "Invalid request" in malformed.json()["detail"]
    too_big = httpx.post(url + "/projects", content=b"x" * (2 * 1024 * 1024), headers=headers)
    assert too_big.status_code == 413 and "larger than the limit" in too_big.json()["detail"]

    project = ana.create_project(name="fresh", model=str(server.root / "models" / "bert"),
                                 dataset={"inline": spec_for(server.root)}, settings=TINY_SETTINGS)
    pid = project["id"]
    assert _status(ana.create_edit, pid, reviewer="Ana")[0] == 409  # nothing discovered yet
    assert _status(ana.flag, pid, "blocks.0.out", 1, state="spurious", rationale="r", reviewer="Ana")[0] == 404
    bad_state = httpx.put(url + f"/projects/{pid}/features/blocks.0.out/1/flag", headers=headers,
                          json={"state": "maybe", "rationale": "r", "reviewer": "Ana"})
    assert bad_state.status_code == 422 and "state" in bad_state.json()["detail"]
    bad_sort = httpx.get(url + f"/projects/{pid}/features", params={"sort": "colour"}, headers=headers)
    assert bad_sort.status_code == 422 and "sort" in bad_sort.json()["detail"]
    job = ana.discover(pid)
    assert _status(ana.discover, pid)[0] == 409  # one discovery at a time
    ana.wait(job["id"], timeout=300, poll=0.5)
    assert _status(ana.cancel, job["id"])[0] == 409
    assert _status(ana.create_edit, pid, reviewer="Ana")[0] == 409  # no flags yet
    status, detail = _status(ana.create_edit, pid, reviewer="Ana", features=[{"site": "blocks.0.out", "feature": 9999}])
    assert status == 404 and detail.startswith("Feature blocks.0.out/9999 is not in") and pid in detail
    no_reviewer = httpx.post(url + f"/projects/{pid}/edits", headers=headers, json={"features": None})
    assert no_reviewer.status_code == 422 and "reviewer" in no_reviewer.json()["detail"]
    assert _status(ana.report, pid, "nope")[0] == 404
    feature = ana.features(pid, limit=1)["items"][0]
    created = ana.create_edit(pid, reviewer="Ana", features=[{"site": feature["site"], "feature": feature["feature"]}])
    status, detail = _status(ana.report, pid, created["edit"]["id"])  # before its job has finished
    assert status == 409 or status == 200, detail
    ana.wait(created["job"]["id"], timeout=300, poll=0.5)
    eid = created["edit"]["id"]
    assert _status(ana.predict, pid, eid, ["x"] * 513) == (400, "At most 512 texts per request, got 513.")
    assert _status(ana.predict, pid, eid, ["ok", "x" * 65537]) == (
        400, "Text 1 has 65537 characters; at most 65536 per text (EDITING_SERVICE_PREDICT_MAX_TEXT_CHARS).")
    empty = httpx.post(url + f"/projects/{pid}/edits/{eid}/predict", headers=headers, json={"texts": []})
    assert empty.status_code == 422
    wrong_model = httpx.post(url + f"/projects/{pid}/edits/{eid}/predict", headers=headers,
                             json={"texts": ["a"], "model": "mine"})
    assert wrong_model.status_code == 422


def test_upload_a_data_file(ana: EditingClient, server: ServerProcess, tmp_path: Path) -> None:
    spec = {**spec_for(server.root), "source": {"kind": "file"}}
    project = ana.upload_project(name="uploaded", spec=spec, data=server.root / "data" / "bios.csv",
                                 model=str(server.root / "models" / "bert"), settings=TINY_SETTINGS)
    assert project["dataset"].endswith("spec.yaml")
    wrong = tmp_path / "bios.txt"
    wrong.write_text("x")
    assert _status(ana.upload_project, name="u", spec=spec, data=wrong)[0] == 400
    form = httpx.post(server.url + "/v1/projects/upload", headers={"Authorization": f"Bearer {TOKENS['ana']}"},
                      data={"project": json.dumps({"name": "u"})},
                      files={"data": ("bios.csv", (server.root / "data" / "bios.csv").read_bytes())})
    assert form.status_code == 400 and "project" in form.json()["detail"]
