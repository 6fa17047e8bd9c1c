"""Re-discovery over real HTTP against real server processes, on SQLite and on PostgreSQL: of 10
concurrent discover requests exactly one is accepted; a re-discovery killed with SIGKILL leaves the
previous discovery current and usable (features, flags, edits), nothing stuck running; a successful
one becomes current, carries over the flags of unchanged SAEs and leaves the others to review; edits
and projects are deleted, and a failed model download leaves no archive behind."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from api_world import TINY_SETTINGS, make_world, spec_for
from http_server import TOKENS, ServerProcess
from postgres import fresh_schema

from editing_service.client import APIError, EditingClient

# Merged into the project's settings; within their bounds, runs for minutes unless stopped.
SLOW_SAE = {"sae": {"d_sae": 65536, "n_epochs": 100, "batch_size": 1}}
CONCURRENT = 10
TEXTS = ["she is a nurse", "he operates"]


@pytest.fixture(params=["sqlite", "postgresql"])
def killable(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = make_world(tmp_path_factory.mktemp(f"rediscover-{request.param}"))
    (root / "tmp").mkdir()
    env = {"TMPDIR": str(root / "tmp")}
    if request.param == "sqlite":
        server = ServerProcess(root, env=env).start()
        yield server
        server.stop()
        return
    with fresh_schema() as url:
        server = ServerProcess(root, database_url=url, env=env).start()
        yield server
        server.stop()


def _wait_for(client: EditingClient, job_id: str, statuses: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {statuses}: {client.job(job_id)}")


def _concurrent_discovers(server: ServerProcess, project_id: str, settings: dict) -> Counter[int]:
    barrier, answers = threading.Barrier(CONCURRENT), []

    def post() -> None:
        with httpx.Client(base_url=server.url + "/v1", timeout=120,
                          headers={"Authorization": f"Bearer {TOKENS['ben']}"}) as http:
            barrier.wait()
            answers.append(http.post(f"/projects/{project_id}/jobs", json={"kind": "discover", "settings": settings}))

    threads = [threading.Thread(target=post) for _ in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(a.status_code for a in answers)


def _state(client: EditingClient, project_id: str) -> tuple:
    """What a reviewer sees of the current discovery: features with flags, flags, audit log."""
    features = client.features(project_id, limit=1000)["items"]
    return features, client.flags(project_id), client.audit(project_id)


def test_a_killed_rediscovery_loses_nothing_and_a_finished_one_carries_flags(killable: ServerProcess) -> None:
    root = killable.root
    with EditingClient(killable.url, token=TOKENS["ana"]) as ana:
        project = ana.create_project(name="p", model=str(root / "models" / "bert"),
                                     dataset={"inline": spec_for(root)}, settings=TINY_SETTINGS)
        pid = project["id"]
        ana.wait(ana.discover(pid)["id"], timeout=300, poll=0.5)
        [v1] = ana.discoveries(pid)
        assert (v1["version"], v1["status"], v1["current"]) == (1, "succeeded", True)
        feature = ana.features(pid, limit=1)["items"][0]
        ana.flag(pid, feature["site"], feature["feature"], state="spurious", rationale="r1", reviewer="Ana")
        before = _state(ana, pid)

        answers = _concurrent_discovers(killable, pid, SLOW_SAE)
        assert answers == Counter({202: 1, 409: CONCURRENT - 1}), answers
        [running] = [j for j in ana.jobs(pid) if j["status"] in ("queued", "running")]
        _wait_for(ana, running["id"], {"running"})
        v2 = ana.discoveries(pid)[0]
        assert (v2["version"], v2["status"], v2["current"]) == (2, "running", False)
        assert v2["settings"]["sae"] == {**TINY_SETTINGS["sae"], **SLOW_SAE["sae"]}
        assert ana.project(pid)["discovery"] == v1["id"] and _state(ana, pid) == before

    killable.kill()  # SIGKILL in the middle of the re-discovery
    killable.env["EDITING_SERVICE_JOB_MAX_ATTEMPTS"] = "1"  # no second try: the lost job fails
    killable.start()
    with EditingClient(killable.url, token=TOKENS["ana"]) as ana:
        failed = _wait_for(ana, running["id"], {"failed", "cancelled", "succeeded"}, timeout=60)
        assert failed["status"] == "failed" and "stopped responding" in failed["error"]
        assert not [j for j in ana.jobs(pid) if j["status"] in ("queued", "running")]
        assert [(d["version"], d["status"], d["current"]) for d in ana.discoveries(pid)] == [
            (2, "failed", False), (1, "succeeded", True)]
        assert ana.project(pid)["discovery"] == v1["id"] and _state(ana, pid) == before
        assert all(f["current"] and f["discovery_id"] == v1["id"] for f in ana.flags(pid))

        created = ana.create_edit(pid, reviewer="Ana")  # the previous discovery's caches are whole
        ana.wait(created["job"]["id"], timeout=300, poll=0.5)
        edit = ana.edit(pid, created["edit"]["id"])
        assert edit["status"] == "succeeded" and edit["discovery_id"] == v1["id"]
        original = ana.predict(pid, edit["id"], TEXTS, model="original")

        ana.wait(ana.discover(pid)["id"], timeout=300, poll=0.5)  # the project's own settings again
        v3 = ana.discoveries(pid)[0]
        assert (v3["version"], v3["status"], v3["current"]) == (3, "succeeded", True)
        assert ana.project(pid)["discovery"] == v3["id"]
        # Same settings, same seeded SAEs: the flag carries over.
        assert v3["sae_digests"] == v1["sae_digests"] and v3["flags_carried"] == [feature["id"]]
        assert ana.features(pid, flag="spurious")["items"][0]["id"] == feature["id"]

        ana.wait(ana.discover(pid, settings={"sae": {"d_sae": 32}})["id"], timeout=300, poll=0.5)
        v4 = ana.discoveries(pid)[0]
        assert v4["current"] and v4["flags_carried"] == [] and v4["flags_to_review"] == [feature["id"]]
        assert [f["id"] for f in ana.flags(pid, current=False)] == [feature["id"]]
        assert ana.features(pid, flag="spurious")["total"] == 0  # never shown on another SAE's feature
        with pytest.raises(APIError) as review:
            ana.create_edit(pid, reviewer="Ana")
        assert review.value.status == 409 and "need review" in review.value.detail
        # The edit made on v1 still serves its original model from v1's folder.
        assert ana.predict(pid, edit["id"], TEXTS, model="original") == original

        archives = lambda: sorted((root / "tmp").rglob("*.tar.gz"))  # noqa: E731
        ana.download_model(pid, edit["id"], root / "edited.tar.gz")
        shutil.rmtree(root / "home" / "projects" / pid / "edits" / edit["id"] / "models" / "edited")
        with pytest.raises(APIError) as missing:
            ana.download_model(pid, edit["id"], root / "again.tar.gz")
        assert missing.value.status == 409 and archives() == []

        ana.delete_edit(pid, edit["id"])
        with pytest.raises(APIError) as gone:
            ana.edit(pid, edit["id"])
        assert gone.value.status == 404
        job = ana.discover(pid, settings=SLOW_SAE)
        with pytest.raises(APIError) as busy:
            ana.delete_project(pid)
        assert busy.value.status == 409 and job["id"] in busy.value.detail
        ana.cancel(job["id"])
        _wait_for(ana, job["id"], {"cancelled"})
        ana.delete_project(pid)
        assert not (root / "home" / "projects" / pid).exists()
        with pytest.raises(APIError) as deleted:
            ana.project(pid)
        assert deleted.value.status == 404 and "deleted" in deleted.value.detail
        assert ana.audit(pid) == before[2]
        assert [(e["action"], e["principal"]) for e in ana.events(pid)] == [
            ("project_created", "ana"), ("discovery_current", "ana"), ("edit_created", "ana"),
            ("discovery_current", "ana"), ("discovery_current", "ana"), ("edit_deleted", "ana"),
            ("project_deleted", "ana")]
