"""A thin Python client of the REST API (httpx), covering the whole flow.

    client = EditingClient("http://localhost:3000", token="...")
    project = client.create_project(name="bios", dataset={"spec": "biasbios_surgeon_nurse"})
    client.wait(client.discover(project["id"])["id"])
    client.apply_suggestions(project["id"], kind="lexicon", reviewer="ana")
    created = client.create_edit(project["id"], reviewer="ana")
    client.wait(created["job"]["id"])
    client.predict(project["id"], created["edit"]["id"], ["She is a surgeon."])
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

FINISHED = ("succeeded", "failed", "cancelled")


class APIError(Exception):
    """An answer other than 2xx; `status` and the server's `detail` sentence."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class JobFailed(Exception):
    """A job ended without succeeding."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"Job {job['id']} {job['status']}: {job.get('error')}")
        self.job = job


class EditingClient:
    def __init__(self, base_url: str, *, token: str, timeout: float = 120.0) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/v1", timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> EditingClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise APIError(response.status_code, detail)
        if response.status_code == 204:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    # projects
    def create_project(self, *, name: str, dataset: dict[str, Any], model: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"name": name, "model": model, "dataset": dataset, "settings": settings or {}}
        return self._call("POST", "/projects", json=body)

    def upload_project(self, *, name: str, spec: dict[str, Any], data: str | Path, model: str | None = None,
                       settings: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"name": name, "model": model, "dataset": {"inline": spec}, "settings": settings or {}}
        path = Path(data)
        with path.open("rb") as handle:
            return self._call("POST", "/projects/upload", data={"project": json.dumps(body)},
                              files={"data": (path.name, handle)})

    def project(self, project_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}")

    def projects(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", "/projects", params={"limit": limit, "offset": offset})

    def delete_project(self, project_id: str) -> None:
        self._call("DELETE", f"/projects/{project_id}")

    def delete_upload(self, project_id: str) -> None:
        """Delete the data file uploaded with the project (its results stay)."""
        self._call("DELETE", f"/projects/{project_id}/upload")

    def events(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/events")["items"]

    # jobs and discoveries
    def discover(self, project_id: str, *, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue a new discovery (with run-settings overrides for it alone); returns its job."""
        return self._call("POST", f"/projects/{project_id}/jobs", json={"kind": "discover", "settings": settings})

    def discoveries(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/discoveries")["items"]

    def discovery(self, project_id: str, discovery_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}/discoveries/{discovery_id}")

    def jobs(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/jobs")["items"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def wait(self, job_id: str, *, timeout: float = 3600.0, poll: float = 1.0) -> dict[str, Any]:
        """Poll a job until it ends; returns it if it succeeded, raises JobFailed otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in FINISHED:
                if job["status"] != "succeeded":
                    raise JobFailed(job)
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"Job {job_id} still {job['status']} after {timeout} s.")
            time.sleep(poll)

    # features and flags
    def features(self, project_id: str, **filters: Any) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}/features", params=filters)

    def feature(self, project_id: str, site: str, feature: int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}/features/{site}/{feature}")

    def circuit(self, project_id: str, **query: Any) -> dict[str, Any]:
        """The circuit graph (circuit.json schema); query: node_threshold, edge_threshold, max_nodes."""
        return self._call("GET", f"/projects/{project_id}/circuit",
                          params={k: v for k, v in query.items() if v is not None})

    def flag(self, project_id: str, site: str, feature: int, *, state: str, rationale: str,
             reviewer: str) -> dict[str, Any]:
        return self._call("PUT", f"/projects/{project_id}/features/{site}/{feature}/flag",
                          json={"state": state, "rationale": rationale, "reviewer": reviewer})

    def clear_flag(self, project_id: str, site: str, feature: int, *, reviewer: str, rationale: str = "") -> None:
        self._call("DELETE", f"/projects/{project_id}/features/{site}/{feature}/flag",
                   params={"reviewer": reviewer, "rationale": rationale})

    def flags(self, project_id: str, *, current: bool | None = None) -> list[dict[str, Any]]:
        """Flags; `current=False`: only those a re-discovery left to review."""
        params = {} if current is None else {"current": str(current).lower()}
        return self._call("GET", f"/projects/{project_id}/flags", params=params)["items"]

    def audit(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/audit")["items"]

    def apply_suggestions(self, project_id: str, *, kind: str, reviewer: str,
                          rationale: str | None = None) -> list[dict[str, Any]]:
        body = {"kind": kind, "reviewer": reviewer, "rationale": rationale}
        return self._call("POST", f"/projects/{project_id}/suggestions/apply", json=body)["items"]

    # edits
    def create_edit(self, project_id: str, *, reviewer: str, features: list[dict[str, Any]] | None = None,
                    rationale: str = "") -> dict[str, Any]:
        body = {"reviewer": reviewer, "features": features, "rationale": rationale}
        return self._call("POST", f"/projects/{project_id}/edits", json=body)

    def edits(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/edits")["items"]

    def edit(self, project_id: str, edit_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}/edits/{edit_id}")

    def delete_edit(self, project_id: str, edit_id: str) -> None:
        self._call("DELETE", f"/projects/{project_id}/edits/{edit_id}")

    def report(self, project_id: str, edit_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{project_id}/edits/{edit_id}/report")

    def report_html(self, project_id: str, edit_id: str) -> str:
        return self._call("GET", f"/projects/{project_id}/edits/{edit_id}/report.html").decode()

    def download_model(self, project_id: str, edit_id: str, target: str | Path, *, which: str = "edited") -> Path:
        """Save the model archive (.tar.gz) to `target`."""
        content = self._call("GET", f"/projects/{project_id}/edits/{edit_id}/model", params={"which": which})
        Path(target).write_bytes(content)
        return Path(target)

    def predict(self, project_id: str, edit_id: str, texts: list[str], *, model: str = "edited") -> dict[str, Any]:
        return self._call("POST", f"/projects/{project_id}/edits/{edit_id}/predict",
                          json={"texts": texts, "model": model})

    # access
    def me(self) -> dict[str, Any]:
        """The caller: name, role, permissions and project memberships."""
        return self._call("GET", "/me")

    def members(self, project_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{project_id}/members")["items"]

    def set_member(self, project_id: str, principal: str, *, role: str) -> dict[str, Any]:
        return self._call("PUT", f"/projects/{project_id}/members/{principal}", json={"role": role})

    def remove_member(self, project_id: str, principal: str) -> None:
        self._call("DELETE", f"/projects/{project_id}/members/{principal}")

    def tokens(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tokens")["items"]

    def create_token(self, name: str, *, role: str) -> dict[str, Any]:
        """A new database token; its `token` field is the only time the token is shown."""
        return self._call("POST", "/tokens", json={"name": name, "role": role})

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/tokens/{token_id}")

    def service_events(self, *, project_id: str | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """Changes other than flags (projects, edits, members, tokens), oldest first; admins only."""
        params = {"limit": limit, "offset": offset, **({"project_id": project_id} if project_id else {})}
        return self._call("GET", "/events", params=params)
