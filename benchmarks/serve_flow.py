"""The server and the project behind `serve.py`: one `bentoml serve` process, and a succeeded edit.

`BenchServer` starts the service on a home folder (its SQLite database and artifacts stay there, so a
second benchmark run on the same home finds the edit again) and stops its whole process tree.
`Target` says which project the benchmark wants (model, dataset, settings); `ensure_edit` finds a
succeeded edit of such a project through the REST API, or makes one with the whole REST flow
(create project, discover, apply the lexicon suggestions, edit), resuming a flow left half done.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # local_server.py: a test and benchmark helper, not part of the package
from local_server import LocalServer  # noqa: E402

from editing_service.client import EditingClient  # noqa: E402

REVIEWER = "serve-benchmark"
ACTIVE = ("queued", "running")
JOB_TIMEOUT_S = 4 * 3600.0

Log = Callable[[str], None]


def log(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------- server
class BenchServer(LocalServer):
    """The service on `home` (SQLite and artifacts in home/service), with one random bearer token."""

    def __init__(self, home: Path, *, device: str = "auto", extra_env: dict[str, str] | None = None) -> None:
        self.token = secrets.token_urlsafe(18)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("EDITING_SERVICE_")}
        super().__init__({
            **inherited,
            "BENTOML_HOME": str(home / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
            "TRANSFORMERS_OFFLINE": os.environ.get("TRANSFORMERS_OFFLINE", "1"),
            "EDITING_SERVICE_HOME": str(home / "service"),
            "EDITING_SERVICE_API_TOKENS": f"bench={self.token}",
            "EDITING_SERVICE_DEVICE": device,
            **(extra_env or {}),
        }, log_path=home / "server.log", startup_s=180.0, stop_s=40.0, cwd=ROOT)


# ------------------------------------------------------------------------------------------ project
@dataclass(frozen=True)
class Target:
    """The project the benchmark serves: what `create_project` is given, and how to recognise it."""

    name: str
    model: str | None
    dataset: dict[str, Any]
    settings: dict[str, Any]
    spec_name: str | None = None  # a shipped spec: projects must name it as their dataset

    def matches(self, project: dict[str, Any]) -> bool:
        same_data = self.spec_name is None or project["dataset"] == self.spec_name
        return project["model"] == self.model and project["settings"] == self.settings and same_data


@dataclass
class FlowResult:
    """The project and succeeded edit used, and what this invocation did to get them."""

    project: dict[str, Any]
    edit: dict[str, Any]
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return bool(self.steps.get("ran"))


def all_projects(client: EditingClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.projects(limit=500, offset=len(items))
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            return items


def newest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["created_at"], reverse=True)


def project_jobs(client: EditingClient, project_id: str) -> list[dict[str, Any]]:
    # The client has no method for a project's job list; the route is part of the API.
    return client._call("GET", f"/projects/{project_id}/jobs")["items"]


def job_seconds(job: dict[str, Any]) -> float | None:
    if not job.get("started_at") or not job.get("finished_at"):
        return None
    started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def wait_job(client: EditingClient, job_id: str, what: str, *, poll: float = 1.0) -> dict[str, Any]:
    """Poll a job to its end, logging its step as it changes; raises unless it succeeded."""
    deadline, last = time.monotonic() + JOB_TIMEOUT_S, ""
    while True:
        job = client.job(job_id)
        seen = f"{job['status']} {job['step']}"
        if seen != last:
            log(f"  {what} job {job_id}: {job['status']}, {job['step'] or '-'} ({job['progress']:.0%})")
            last = seen
        if job["status"] not in ACTIVE:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} job {job_id} still {job['status']} after {JOB_TIMEOUT_S:.0f} s")
        time.sleep(poll)
    return client.wait(job_id, timeout=1, poll=0.1)  # raises JobFailed for failed or cancelled


def find_succeeded(client: EditingClient, target: Target) -> FlowResult | None:
    for project in newest_first([p for p in all_projects(client) if target.matches(p)]):
        done = [e for e in newest_first(client.edits(project["id"])) if e["status"] == "succeeded"]
        if done:
            return FlowResult(project=project, edit=done[0], steps={"ran": False})
    return None


def ensure_discovered(client: EditingClient, project: dict[str, Any], steps: dict[str, Any]) -> None:
    running = [j for j in project_jobs(client, project["id"]) if j["kind"] == "discover" and j["status"] in ACTIVE]
    if running:
        log(f"  resuming discover job {running[0]['id']}")
        job = wait_job(client, running[0]["id"], "discover")
    elif client.project(project["id"])["features"] == 0:
        job = wait_job(client, client.discover(project["id"])["id"], "discover")
    else:
        return
    steps["discover_job"], steps["discover_s"] = job["id"], job_seconds(job)


def ensure_edited(client: EditingClient, project: dict[str, Any], steps: dict[str, Any]) -> dict[str, Any]:
    active = [e for e in newest_first(client.edits(project["id"])) if e["status"] in ACTIVE]
    if active:
        log(f"  resuming edit {active[0]['id']}")
        edit = active[0]
    else:
        applied = client.apply_suggestions(project["id"], kind="lexicon", reviewer=REVIEWER,
                                           rationale="serve benchmark: the gendered-words lexicon suggestions")
        steps["flags_applied"] = len(applied)
        log(f"  applied {len(applied)} lexicon suggestions as spurious flags")
        edit = client.create_edit(project["id"], reviewer=REVIEWER)["edit"]
    job = wait_job(client, edit["job_id"], "edit")
    steps["edit_job"], steps["edit_s"] = job["id"], job_seconds(job)
    return client.edit(project["id"], edit["id"])


def ensure_edit(client: EditingClient, target: Target) -> FlowResult:
    """A succeeded edit of a project matching `target`: found, finished, or made by the REST flow."""
    found = find_succeeded(client, target)
    if found is not None:
        log(f"reusing project {found.project['id']}, edit {found.edit['id']} (succeeded)")
        return found
    started = time.perf_counter()
    steps: dict[str, Any] = {"ran": True}
    candidates = newest_first([p for p in all_projects(client) if target.matches(p)])
    if candidates:
        project = candidates[0]
        log(f"resuming the REST flow on project {project['id']}")
    else:
        project = client.create_project(name=target.name, model=target.model, dataset=target.dataset,
                                        settings=target.settings)
        steps["created_project"] = True
        log(f"created project {project['id']} ({target.name})")
    ensure_discovered(client, project, steps)
    edit = ensure_edited(client, project, steps)
    steps["flow_s"] = time.perf_counter() - started
    return FlowResult(project=client.project(project["id"]), edit=edit, steps=steps)


def given_edit(client: EditingClient, project_id: str, edit_id: str) -> FlowResult:
    """The project and edit named on the command line; the edit must have succeeded."""
    edit = client.edit(project_id, edit_id)
    if edit["status"] != "succeeded":
        raise SystemExit(f"edit {edit_id} of project {project_id} is {edit['status']}, not succeeded")
    return FlowResult(project=client.project(project_id), edit=edit, steps={"ran": False})
