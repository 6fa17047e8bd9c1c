"""Hostile and careless input at the edge, over HTTP against real server processes on SQLite and on the
real PostgreSQL: every answer is a 4xx naming the problem (never a 500), no request reads a file
outside the configured roots, no answer shows an absolute server path, and job creation is bounded
per principal. The servers run no job worker, so queued jobs stay queued and cost nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_world import TINY_SETTINGS, make_world, spec_for
from http_server import TOKENS, ServerProcess
from postgres import fresh_schema

QUOTA = 4


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = make_world(tmp_path_factory.mktemp(f"edge-{request.param}"))
    env = {"EDITING_SERVICE_WORKER": "false", "EDITING_SERVICE_JOBS_PER_PRINCIPAL": str(QUOTA),
           "EDITING_SERVICE_JOB_WINDOW_S": "3600"}
    if request.param == "sqlite":
        process = ServerProcess(root, env=env).start()
        yield process
        process.stop()
        return
    with fresh_schema() as url:
        process = ServerProcess(root, database_url=url, env=env).start()
        yield process
        process.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/v1", headers={"Authorization": f"Bearer {TOKENS['ana']}"},
                      timeout=60) as client:
        yield client


def _project_body(server: ServerProcess, **change: object) -> dict:
    return {"name": "p", "model": str(server.root / "models" / "bert"), "dataset": {"inline": spec_for(server.root)},
            "settings": TINY_SETTINGS, **change}


@pytest.fixture(scope="module")
def project(http: httpx.Client, server: ServerProcess) -> str:
    created = http.post("/projects", json=_project_body(server))
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _refused(answer: httpx.Response, status: int | tuple[int, ...], *words: str) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert answer.status_code in statuses, (answer.status_code, answer.text)
    detail = answer.json()["detail"]
    assert all(w in detail for w in words), detail
    return detail


def _no_server_paths(text: str, server: ServerProcess) -> None:
    for root in {server.root, server.root.resolve()}:
        assert str(root) not in text, text


def test_nul_bytes_anywhere_are_refused(http: httpx.Client, server: ServerProcess, project: str) -> None:
    _refused(http.get("/jobs/x%00"), 422, "job_id")
    _refused(http.get("/projects/x%00y"), 422, "project_id")
    _refused(http.get(f"/projects/{project}/features", params={"site": "blocks.0.out\x00"}), 422, "site")
    _refused(http.get(f"/projects/{project}/features/blocks.0%00/1"), 422, "site")
    _refused(http.request("DELETE", f"/projects/{project}/features/blocks.0.out/1/flag",
                          params={"reviewer": "A\x00na"}), 422, "NUL")
    _refused(http.post("/projects", json=_project_body(server, name="a\x00b")), 422, "name", "NUL")
    _refused(http.post("/projects", json=_project_body(server, settings={"edit": {"mode": "zero\x00"}})), 422, "NUL")
    inline = {**spec_for(server.root), "text_column": "te\x00xt"}
    _refused(http.post("/projects", json=_project_body(server, dataset={"inline": inline})), 422, "NUL")
    _refused(http.put(f"/projects/{project}/features/blocks.0.out/1/flag",
                      json={"state": "spurious", "rationale": "r\x00", "reviewer": "Ana"}), 422, "NUL")
    _refused(http.post(f"/projects/{project}/edits", json={"reviewer": "Ana\x00"}), 422, "NUL")


@pytest.mark.parametrize("big", [2**31, 2**63, 2**64])
def test_integers_beyond_the_database_are_refused(http: httpx.Client, project: str, big: int) -> None:
    _refused(http.get("/projects", params={"offset": big}), 422, "offset")
    _refused(http.get(f"/projects/{project}/audit", params={"offset": big}), 422, "offset")
    _refused(http.get(f"/projects/{project}/features", params={"offset": big}), 422, "offset")
    _refused(http.get(f"/projects/{project}/features/blocks.0.out/{big}"), 422, "feature")
    _refused(http.put(f"/projects/{project}/features/blocks.0.out/{big}/flag",
                      json={"state": "spurious", "rationale": "r", "reviewer": "Ana"}), 422, "feature")
    _refused(http.post(f"/projects/{project}/edits",
                       json={"reviewer": "Ana", "features": [{"site": "blocks.0.out", "feature": big}]}),
             422, "feature")
    assert http.get(f"/projects/{project}/features/blocks.0.out/{2**31 - 1}").status_code == 404


@pytest.mark.parametrize(("name", "content", "cause"), [
    ("empty.csv", b"", "EmptyDataError"),
    ("latin1.csv", "text,occupation,gender,split\nInfirmi\xe8re \xe0 Lyon,nurse,F,train\n".encode("latin-1"), "UTF8"),
    ("broken.jsonl", b'{"text": "a", "occupation": "nurse"\n{oops\n', "jsonl"),
    ("noise.parquet", b"this is not parquet", "parquet"),
])
def test_unreadable_data_files_are_refused(http: httpx.Client, server: ServerProcess, name: str, content: bytes,
                                           cause: str) -> None:
    path = server.root / "data" / name
    path.write_bytes(content)
    inline = {**spec_for(server.root), "source": {"kind": "file", "path": str(path)}}
    detail = _refused(http.post("/projects", json=_project_body(server, dataset={"inline": inline})), 400,
                      "cannot be read", cause)
    _no_server_paths(detail, server)
    upload = http.post("/projects/upload", data={"project": json.dumps(_project_body(
        server, dataset={"inline": {**spec_for(server.root), "source": {"kind": "file"}}}))},
        files={"data": (name, content)})
    _no_server_paths(_refused(upload, 400, "cannot be read"), server)


def test_upload_file_names_a_file_system_cannot_store_are_refused(http: httpx.Client, server: ServerProcess) -> None:
    body = json.dumps(_project_body(server, dataset={"inline": {**spec_for(server.root), "source": {"kind": "file"}}}))
    data = (server.root / "data" / "bios.csv").read_bytes()
    for name in ("a" * 252 + ".csv", "é" * 126 + ".csv"):  # 256 and 256 bytes
        answer = http.post("/projects/upload", data={"project": body}, files={"data": (name, data)})
        _refused(answer, 400, "255 bytes")
    fits = http.post("/projects/upload", data={"project": body}, files={"data": ("a" * 251 + ".csv", data)})
    assert fits.status_code == 201, fits.text


SECRET_WORD = "zebracorn"


def test_a_lexicon_is_a_shipped_name_or_words_never_a_server_file(http: httpx.Client, server: ServerProcess,
                                                                  tmp_path: Path) -> None:
    outside = tmp_path / "words.txt"
    outside.write_text(SECRET_WORD + "\n")
    inside = server.root / "data" / "words.txt"  # even under a data root: no server file is a lexicon
    inside.write_text(SECRET_WORD + "\n")
    details = []
    for lexicon in ("/etc/shadow", "/etc/passwd", str(outside), str(inside), "../../../../etc/shadow",
                    str(tmp_path / "absent.txt")):
        answer = http.post("/projects", json=_project_body(server, settings={"suggestions": {"lexicon": lexicon}}))
        detail = _refused(answer, 400, "not a shipped lexicon", "never a file on the server")
        _no_server_paths(detail, server)
        details.append(detail.split(" is not a shipped lexicon")[1])
    assert len(set(details)) == 1  # the same answer whether or not the file exists: no oracle
    words = http.post("/projects", json=_project_body(server, settings={"suggestions": {"lexicon": ["she", "her"]}}))
    assert words.status_code == 201, words.text
    assert words.json()["settings"]["suggestions"]["lexicon"] == ["she", "her"]
    shipped = http.post("/projects", json=_project_body(server, settings={"suggestions": {"lexicon": "gendered"}}))
    assert shipped.status_code == 201, shipped.text
    _refused(http.post("/projects", json=_project_body(server, settings={"suggestions": {"lexicon": []}})), 400,
             "lexicon")


def test_paths_outside_the_roots_are_refused(http: httpx.Client, server: ServerProcess, tmp_path: Path) -> None:
    link = server.root / "data" / "shadow.csv"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/passwd")
    model_link = server.root / "models" / "etc"
    model_link.unlink(missing_ok=True)
    model_link.symlink_to("/etc")
    for path in ("/etc/shadow", "/etc/passwd", str(link), "../../../../../etc/passwd", str(tmp_path)):
        inline = {**spec_for(server.root), "source": {"kind": "file", "path": path}}
        detail = _refused(http.post("/projects", json=_project_body(server, dataset={"inline": inline})), 403,
                          "outside the allowed roots")
        _no_server_paths(detail, server)
        inline = {**spec_for(server.root), "source": {"kind": "disk", "path": path}}
        _refused(http.post("/projects", json=_project_body(server, dataset={"inline": inline})), 403)
    for model in ("/etc", str(model_link), "../../../../../etc", str(tmp_path)):
        _no_server_paths(_refused(http.post("/projects", json=_project_body(server, model=model)), 403,
                                  "outside the allowed roots"), server)
    _no_server_paths(_refused(http.post("/projects", json=_project_body(
        server, model=str(server.root / "models" / "missing"))), 400, "does not exist"), server)


def test_projects_show_paths_relative_to_the_home(http: httpx.Client, server: ServerProcess, project: str) -> None:
    shown = http.get(f"/projects/{project}").json()
    assert shown["model"] == "../models/bert" and not shown["dataset"].startswith("/")
    _no_server_paths(json.dumps(shown), server)
    _no_server_paths(http.get("/projects").text, server)
    again = http.post("/projects", json=_project_body(server, model=shown["model"]))  # relative: to the home
    assert again.status_code == 201 and again.json()["model"] == "../models/bert", again.text


def test_settings_have_upper_bounds(http: httpx.Client, server: ServerProcess) -> None:
    for section, key, value in [("sae", "d_sae", 10**6), ("sae", "n_epochs", 10**4), ("model", "max_length", 10**6),
                                ("attribution", "n_examples", 10**8), ("edit", "n_boot", 10**7),
                                ("sae", "seed", 2**64)]:
        answer = http.post("/projects", json=_project_body(server, settings={section: {key: value}}))
        _refused(answer, 400, f"{section}.{key}", "less than or equal")


def test_remote_code_is_found_in_the_parsed_config(http: httpx.Client, server: ServerProcess) -> None:
    folder = server.root / "models" / "escaped"
    if not folder.exists():
        shutil.copytree(server.root / "models" / "bert", folder)
        config = json.loads((folder / "config.json").read_text())
        text = json.dumps({**config, "auto_map": {"AutoModel": "x.Model"}}).replace('"auto_map"', '"\\u0061uto_map"')
        (folder / "config.json").write_text(text)
    _refused(http.post("/projects", json=_project_body(server, model=str(folder))), 400, "auto_map")


def test_a_streamed_body_over_the_limit_gets_413(server: ServerProcess) -> None:
    chunks = iter([b"x" * 600_000, b"y" * 600_000])  # no Content-Length: sent chunked
    answer = httpx.post(server.url + "/v1/projects", content=chunks, timeout=60,
                        headers={"Authorization": f"Bearer {TOKENS['ana']}", "content-type": "application/json"})
    _refused(answer, 413, "larger than the limit")


def test_jobs_per_principal_are_bounded(http: httpx.Client, server: ServerProcess) -> None:
    ben = httpx.Client(base_url=server.url + "/v1", headers={"Authorization": f"Bearer {TOKENS['ben']}"}, timeout=60)
    projects = [http.post("/projects", json=_project_body(server, name=f"q{i}")).json()["id"] for i in range(QUOTA + 1)]
    for pid in projects[:QUOTA]:
        assert http.post(f"/projects/{pid}/jobs", json={"kind": "discover"}).status_code == 202
    answer = http.post(f"/projects/{projects[QUOTA]}/jobs", json={"kind": "discover"})
    _refused(answer, 429, "'ana' has created 4 jobs", "EDITING_SERVICE_JOBS_PER_PRINCIPAL")
    assert 0 < int(answer.headers["retry-after"]) <= 3600
    with ben:  # the quota is per principal
        assert ben.post(f"/projects/{projects[QUOTA]}/jobs", json={"kind": "discover"}).status_code == 202
