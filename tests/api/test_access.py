"""Access control over real HTTP, on SQLite and on the real PostgreSQL: every route of /docs.json answered
to each role as access_matrix.py expects, listings limited to the caller's projects, database tokens
rotated without a restart, and the audit log naming the principal of every change to projects, members
and tokens."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from access_matrix import CALLERS, expectations
from api_world import TINY_SETTINGS, make_world, spec_for
from http_server import ServerProcess
from postgres import fresh_schema
from sqlalchemy.pool import NullPool

from editing_service.client import EditingClient
from editing_service.store.tables import Base

TOKENS = {"admin": "tok-root", "service": "tok-svc", "outsider": "tok-out", "viewer": "tok-vic",
          "reviewer": "tok-rev"}
NAMES = {"admin": "root", "service": "svc", "outsider": "out", "viewer": "vic", "reviewer": "rev"}
CONFIGURED = ",".join(f"{NAMES[c]}:{'reviewer' if c == 'outsider' else c}={TOKENS[c]}" for c in TOKENS)
FLAG = {"state": "spurious", "rationale": "matrix", "reviewer": "R"}


@dataclass
class AccessWorld:
    server: ServerProcess
    database_url: str
    admin: EditingClient
    project: str  # discovered, with a finished edit; reviewer and viewer are members
    bare: str  # not discovered; reviewer and viewer are members
    job: str
    edit: str
    site: str
    feature: int
    spare_token: str
    discovery: str
    uploaded: str  # a project made with an upload
    doomed: str  # a project the matrix deletes
    made: list[str] = field(default_factory=list)

    def client(self, caller: str) -> EditingClient:
        return EditingClient(self.server.url, token=TOKENS[caller])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccessWorld]:
    root = make_world(tmp_path_factory.mktemp(f"access-{request.param}"))
    env = {"EDITING_SERVICE_API_TOKENS": CONFIGURED, "EDITING_SERVICE_DATABASE_TOKENS": "1",
           "EDITING_SERVICE_TOKEN_CACHE_S": "600"}
    with ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'home' / 'service.db'}"
            server = ServerProcess(root, env=env)
        else:
            url = cleanup.enter_context(fresh_schema())
            server = ServerProcess(root, database_url=url, env=env)
        cleanup.callback(server.stop)
        server.start()
        with EditingClient(server.url, token=TOKENS["admin"]) as admin:
            yield _build(server, url, admin)


def _build(server: ServerProcess, database_url: str, admin: EditingClient) -> AccessWorld:
    """A discovered project with a finished edit, a bare one, an uploaded one and one to delete; the
    reviewer and the viewer are members of each."""
    root = server.root
    body = {"model": str(root / "models" / "bert"), "dataset": {"inline": spec_for(root)},
            "settings": TINY_SETTINGS}
    project = admin.create_project(name="shared", **body)["id"]
    bare = admin.create_project(name="bare", **body)["id"]
    job = admin.discover(project)["id"]
    admin.wait(job, timeout=300, poll=0.5)
    feature = admin.features(project, limit=1)["items"][0]
    created = admin.create_edit(project, reviewer="R", features=[{"site": feature["site"],
                                                                  "feature": feature["feature"]}])
    admin.wait(created["job"]["id"], timeout=300, poll=0.5)
    for pid in (project, bare):
        admin.set_member(pid, "rev", role="reviewer")
        admin.set_member(pid, "vic", role="viewer")
    spare = admin.create_token("spare", role="viewer")["id"]
    discovery = admin.discoveries(project)[0]["id"]
    uploaded = admin.upload_project(name="uploaded", spec={**spec_for(root), "source": {"kind": "file"}},
                                    data=root / "data" / "bios.csv", model=body["model"],
                                    settings=TINY_SETTINGS)["id"]
    doomed = admin.create_project(name="doomed", **body)["id"]
    for pid in (uploaded, doomed):
        admin.set_member(pid, "rev", role="reviewer")
        admin.set_member(pid, "vic", role="viewer")
    return AccessWorld(server=server, database_url=database_url, admin=admin, project=project, bare=bare,
                       job=job, edit=created["edit"]["id"], site=feature["site"], feature=feature["feature"],
                       spare_token=spare, discovery=discovery, uploaded=uploaded, doomed=doomed)


def _requests(w: AccessWorld) -> dict[tuple[str, str], dict[str, Any]]:
    """How to call each route that needs more than its path: path parameters, a body, a query."""
    root = w.server.root
    project_body = {"name": "made", "model": str(root / "models" / "bert"),
                    "dataset": {"inline": spec_for(root)}, "settings": TINY_SETTINGS}
    upload = {"data": {"project": json.dumps({**project_body, "dataset": {
        "inline": {**spec_for(root), "source": {"kind": "file"}}}})},
        "files": {"data": ("bios.csv", (root / "data" / "bios.csv").read_bytes())}}
    feature = "/v1/projects/{project_id}/features/{site}/{feature}"
    return {
        ("POST", "/v1/projects"): {"json": project_body},
        ("POST", "/v1/projects/upload"): upload,
        ("PUT", "/v1/projects/{project_id}/members/{principal}"): {"json": {"role": "viewer"}},
        ("POST", "/v1/tokens"): {"json": {"name": "fresh", "role": "viewer"}},
        ("POST", "/v1/projects/{project_id}/jobs"): {"json": {"kind": "discover"}, "project_id": w.bare},
        ("PUT", feature + "/flag"): {"json": FLAG},
        ("DELETE", feature + "/flag"): {"params": {"reviewer": "R"}},
        ("POST", "/v1/projects/{project_id}/suggestions/apply"): {"json": {"kind": "lexicon", "reviewer": "R"}},
        ("POST", "/v1/projects/{project_id}/edits"): {"json": {"reviewer": "R", "features": [
            {"site": w.site, "feature": w.feature}]}},
        ("POST", "/v1/projects/{project_id}/edits/{edit_id}/predict"): {"json": {"texts": ["she is a nurse"]}},
        ("DELETE", "/v1/projects/{project_id}/upload"): {"project_id": w.uploaded},
        ("DELETE", "/v1/projects/{project_id}"): {"project_id": w.doomed},
        ("POST", "/v1/projects/{project_id}/edits/{edit_id}/explain"): {"json": {"text": "she is a nurse"}},
    }


def _before(w: AccessWorld) -> dict[tuple[str, str], Callable[[], object]]:
    """What must hold again before each caller tries a route (so that every allowed caller can succeed)."""
    flag = "/v1/projects/{project_id}/features/{site}/{feature}/flag"
    return {("DELETE", flag): lambda: w.admin.flag(w.project, w.site, w.feature, **FLAG)}


def _openapi_operations(w: AccessWorld) -> set[tuple[str, str]]:
    docs = httpx.get(w.server.url + "/docs.json", headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    docs.raise_for_status()
    return {(method.upper(), path) for path, item in docs.json()["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch", "head", "options")}


def test_every_route_answers_each_role_as_the_table_expects(world: AccessWorld) -> None:
    table = expectations()
    operations = _openapi_operations(world)
    assert not operations - set(table), f"routes with no expectation: {sorted(operations - set(table))}"
    assert not set(table) - operations, f"expectations of no route: {sorted(set(table) - operations)}"

    requests, before = _requests(world), _before(world)
    params = {"project_id": world.project, "job_id": world.job, "edit_id": world.edit, "site": world.site,
              "feature": str(world.feature), "principal": "newbie", "token_id": world.spare_token,
              "discovery_id": world.discovery}
    wrong = []
    with httpx.Client(base_url=world.server.url, timeout=120) as http:
        for (method, template), expected in table.items():
            spec = dict(requests.get((method, template), {}))
            path = template.format(**{**params, "project_id": spec.pop("project_id", world.project)})
            for caller in CALLERS:
                if (method, template) in before:
                    before[(method, template)]()
                headers = {} if caller == "none" else {"Authorization": f"Bearer {TOKENS[caller]}"}
                got = http.request(method, path, headers=headers, **spec)
                if got.status_code != expected[caller]:
                    wrong.append(f"{method} {template} as {caller}: {got.status_code} (expected "
                                 f"{expected[caller]}) {got.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_a_caller_sees_only_its_projects(world: AccessWorld) -> None:
    everything = {p["id"] for p in world.admin.projects(limit=500)["items"]}
    assert {world.project, world.bare} <= everything
    for caller in ("reviewer", "viewer"):
        with world.client(caller) as client:
            listed = client.projects()
            mine = {world.project, world.bare, world.uploaded}  # and the doomed one, deleted by the matrix
            assert {p["id"] for p in listed["items"]} == mine and listed["total"] == 3
            me = client.me()
            assert {m["project_id"]: m["role"] for m in me["memberships"]} == dict.fromkeys(mine, caller)
    with world.client("outsider") as outsider:
        assert outsider.projects() == {"items": [], "total": 0, "limit": 50, "offset": 0}
        assert outsider.me()["memberships"] == [] and not outsider.me()["all_projects"]


def test_a_project_role_never_exceeds_the_global_role(world: AccessWorld) -> None:
    flag = f"/v1/projects/{world.project}/features/{world.site}/{world.feature}/flag"
    world.admin.set_member(world.project, "vic", role="reviewer")  # a viewer principal stays a viewer
    world.admin.set_member(world.project, "rev", role="viewer")  # a reviewer made viewer here only reads
    try:
        for caller, refusal in (("viewer", "Principal 'vic' (role viewer) may not flags:write."),
                                ("reviewer", f"Principal 'rev' is a viewer of project {world.project!r} and may "
                                             "not flags:write there.")):
            answer = httpx.put(world.server.url + flag, json=FLAG, headers={"Authorization": f"Bearer {TOKENS[caller]}"})
            assert (answer.status_code, answer.json()["detail"]) == (403, refusal)
            with world.client(caller) as client:
                mine = next(m for m in client.me()["memberships"] if m["project_id"] == world.project)
                assert "flags:write" not in mine["permissions"] and "project:read" in mine["permissions"]
    finally:
        world.admin.set_member(world.project, "vic", role="viewer")
        world.admin.set_member(world.project, "rev", role="reviewer")


def test_database_tokens_rotate_without_a_restart(world: AccessWorld) -> None:
    created = world.admin.create_token("dana", role="reviewer")
    headers = {"Authorization": f"Bearer {created['token']}"}
    me = httpx.get(world.server.url + "/v1/me", headers=headers)
    assert me.status_code == 200 and (me.json()["name"], me.json()["role"]) == ("dana", "reviewer")
    assert httpx.get(world.server.url + f"/v1/projects/{world.bare}", headers=headers).status_code == 404
    world.admin.set_member(world.bare, "dana", role="reviewer")
    assert httpx.get(world.server.url + f"/v1/projects/{world.bare}", headers=headers).status_code == 200

    stored, everything = _stored_token_and_every_row(world.database_url, created["id"])
    assert stored is not None and created["token"] not in everything
    assert all("token" not in t for t in world.admin.tokens())

    world.admin.revoke_token(created["id"])  # this replica forgets its cached lookup at once
    refused = httpx.get(world.server.url + "/v1/me", headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "The bearer token is not valid."

    answer = httpx.post(world.server.url + "/v1/tokens", json={"name": "rev", "role": "admin"},
                        headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    assert answer.status_code == 409 and "EDITING_SERVICE_API_TOKENS" in answer.json()["detail"]
    bad_name = httpx.post(world.server.url + "/v1/tokens", json={"name": "a=b", "role": "viewer"},
                          headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    assert bad_name.status_code == 422 and "name" in bad_name.json()["detail"]


def _stored_token_and_every_row(database_url: str, token_id: str) -> tuple[str | None, str]:
    """The hash kept for a database token, and every row of every table as text."""
    engine = sa.create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT token_sha256 FROM api_tokens WHERE id = :id"),
                                        {"id": token_id}).scalar()
            rows = [repr(row) for table in Base.metadata.sorted_tables for row in connection.execute(table.select())]
    finally:
        engine.dispose()
    return stored, "\n".join(rows)


def test_events_name_who_changed_projects_members_tokens_and_edits(world: AccessWorld) -> None:
    with world.client("reviewer") as reviewer:
        created = reviewer.create_edit(world.project, reviewer="R", features=[{"site": world.site,
                                                                               "feature": world.feature}])
    events = world.admin.service_events(project_id=world.project, limit=1000)["items"]
    seen = [(e["action"], e["principal"], e["target"]) for e in events]
    assert seen[0] == ("project_created", "root", world.project) and events[0]["detail"] == {"name": "shared"}
    assert ("member_added", "root", "rev") in seen and ("member_added", "root", "vic") in seen
    assert seen[-1] == ("edit_created", "rev", created["edit"]["id"])
    assert all(e["project_id"] == world.project for e in events)

    everything = world.admin.service_events(limit=1000)
    tokens = [(e["action"], e["principal"], e["target"], e["detail"]) for e in everything["items"]
              if e["project_id"] is None]
    assert ("token_created", "root", world.spare_token, {"name": "spare", "role": "viewer"}) in tokens
    assert ("token_revoked", "root", world.spare_token, {"name": "spare", "role": "viewer"}) in tokens
    assert everything["total"] == len(everything["items"]) > len(events)
    with world.client("viewer") as viewer:  # flag changes stay in the project's audit, open to members
        assert all(e["action"] in ("set", "clear") for e in viewer.audit(world.project))
