"""Crashes and concurrency: a server killed in the middle of a job, and two reviewers flagging at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from api_world import TINY_SETTINGS, make_world, spec_for
from http_server import TOKENS, ServerProcess

from editing_service.client import EditingClient

# Within the settings' bounds, runs for minutes unless stopped: one token per step into a wide SAE.
SLOW_SETTINGS = {**TINY_SETTINGS, "sae": {"d_sae": 65536, "k": 4, "n_epochs": 100, "batch_size": 1}}


def _discovered_project(client: EditingClient, root: Path, settings: dict) -> dict:
    return client.create_project(name="p", model=str(root / "models" / "bert"), dataset={"inline": spec_for(root)},
                                 settings=settings)


def _wait_for_status(client: EditingClient, job_id: str, statuses: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {statuses}: {client.job(job_id)}")


def test_a_job_running_when_the_server_dies_is_resumed_and_flags_survive(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = make_world(tmp_path_factory.mktemp("restart"))
    server = ServerProcess(root).start()
    try:
        with EditingClient(server.url, token=TOKENS["ana"]) as ana:
            done = _discovered_project(ana, root, TINY_SETTINGS)
            ana.wait(ana.discover(done["id"])["id"], timeout=300, poll=0.5)
            feature = ana.features(done["id"], limit=1)["items"][0]
            ana.flag(done["id"], feature["site"], feature["feature"], state="spurious", rationale="r1", reviewer="Ana")

            slow = _discovered_project(ana, root, SLOW_SETTINGS)
            job = ana.discover(slow["id"])
            running = _wait_for_status(ana, job["id"], {"running"}, timeout=60)
            assert running["attempts"] == 1
        server.kill()  # SIGKILL: no clean shutdown, the job's heartbeat just stops

        server.start()
        with EditingClient(server.url, token=TOKENS["ana"]) as ana:
            resumed = _wait_for_status(ana, job["id"], {"running"}, timeout=60)
            while resumed["attempts"] < 2:  # still the dead worker's claim until its heartbeat is stale
                resumed = _wait_for_status(ana, job["id"], {"running"}, timeout=60)
            assert resumed["status"] == "running" and resumed["attempts"] == 2
            ana.cancel(job["id"])
            assert _wait_for_status(ana, job["id"], {"cancelled"}, timeout=120)["finished_at"] is not None
            flags = ana.flags(done["id"])
            assert [(f["id"], f["state"], f["rationale"]) for f in flags] == [(feature["id"], "spurious", "r1")]
            assert len(ana.audit(done["id"])) == 1

            job = ana.discover(slow["id"])
            _wait_for_status(ana, job["id"], {"running"}, timeout=60)
        server.kill()
        server.env["EDITING_SERVICE_JOB_MAX_ATTEMPTS"] = "1"  # no second try: the lost job must fail, not hang
        server.start()
        with EditingClient(server.url, token=TOKENS["ana"]) as ana:
            failed = _wait_for_status(ana, job["id"], {"failed"}, timeout=60)
            assert "stopped responding" in failed["error"] and failed["finished_at"] is not None
    finally:
        server.stop()


def test_a_clean_shutdown_hands_the_running_job_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = make_world(tmp_path_factory.mktemp("shutdown"))
    server = ServerProcess(root).start()
    try:
        with EditingClient(server.url, token=TOKENS["ana"]) as ana:
            project = _discovered_project(ana, root, SLOW_SETTINGS)
            job = ana.discover(project["id"])
            _wait_for_status(ana, job["id"], {"running"}, timeout=60)
        server.stop()  # SIGTERM
        server.env["EDITING_SERVICE_WORKER"] = "0"  # an API-only replica: nothing claims the job again
        server.start()
        with EditingClient(server.url, token=TOKENS["ana"]) as ana:
            handed_back = ana.job(job["id"])
            assert (handed_back["status"], handed_back["attempts"]) == ("queued", 0), handed_back
            assert "its worker shut down" in handed_back["step"]
    finally:
        server.stop()


def test_cancel_a_running_job(ana: EditingClient, server: ServerProcess) -> None:
    project = _discovered_project(ana, server.root, SLOW_SETTINGS)
    job = ana.discover(project["id"])
    _wait_for_status(ana, job["id"], {"running"}, timeout=60)
    assert ana.cancel(job["id"])["cancel_requested"] is True
    cancelled = _wait_for_status(ana, job["id"], {"cancelled"}, timeout=120)
    assert cancelled["finished_at"] is not None and "cancelled" in cancelled["error"]


def test_two_reviewers_flagging_at_once(ana: EditingClient, server: ServerProcess) -> None:
    project = _discovered_project(ana, server.root, TINY_SETTINGS)
    ana.wait(ana.discover(project["id"])["id"], timeout=300, poll=0.5)
    features = ana.features(project["id"], limit=10)["items"]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def review(name: str, state: str) -> None:
        try:
            with EditingClient(server.url, token=TOKENS[name]) as client:
                start.wait()
                for f in features:
                    client.flag(project["id"], f["site"], f["feature"], state=state, rationale=f"{name} says {state}",
                                reviewer=name.title())
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=review, args=a) for a in (("ana", "spurious"), ("ben", "task_relevant"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    audit = ana.audit(project["id"])
    assert len(audit) == 2 * len(features)
    assert {(e["reviewer"], e["principal"]) for e in audit} == {("Ana", "ana"), ("Ben", "ben")}
    current = {f["id"]: f for f in ana.flags(project["id"])}
    assert set(current) == {f["id"] for f in features}
    for f in features:  # the current flag is whichever change the audit log records last
        last = [e for e in audit if f"{e['site']}/{e['feature']}" == f["id"]][-1]
        assert (current[f["id"]]["state"], current[f["id"]]["reviewer"]) == (last["state"], last["reviewer"])
        previous = [e for e in audit if f"{e['site']}/{e['feature']}" == f["id"]]
        assert previous[0]["previous_state"] is None and previous[1]["previous_state"] == previous[0]["state"]
