"""Two server processes sharing one PostgreSQL and one artifacts folder, as replicas do in Kubernetes:
every job runs exactly once, what one replica records the other serves, and a principal's job quota is
one limit over both."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api_world import TINY_SETTINGS, make_world, spec_for
from http_server import TOKENS, ServerProcess
from postgres import fresh_schema

from editing_service.client import EditingClient


def test_two_replicas_share_jobs_and_flags(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = make_world(tmp_path_factory.mktemp("replicas"))
    with fresh_schema() as url:
        first = ServerProcess(root, database_url=url)
        second = ServerProcess(tmp_path_factory.mktemp("replica-b"), database_url=url,
                               env={k: v for k, v in first.env.items() if k.startswith("EDITING_SERVICE_")})
        first.start(), second.start()
        try:
            with EditingClient(first.url, token=TOKENS["ana"]) as a, EditingClient(second.url, token=TOKENS["ben"]) as b:
                projects = [a.create_project(name=f"p{i}", model=str(root / "models" / "bert"),
                                             dataset={"inline": spec_for(root)}, settings=TINY_SETTINGS)
                            for i in range(4)]
                jobs = [(a if i % 2 else b).discover(p["id"]) for i, p in enumerate(projects)]
                done = [b.wait(job["id"], timeout=300, poll=0.5) for job in jobs]
                assert all(job["attempts"] == 1 for job in done), done  # claimed once, never run twice
                assert len({job["worker_id"] for job in done}) <= 2

                pid = projects[0]["id"]
                feature = b.features(pid, limit=1)["items"][0]
                b.flag(pid, feature["site"], feature["feature"], state="spurious", rationale="seen on B", reviewer="Ben")
                assert [(f["id"], f["principal"]) for f in a.flags(pid)] == [(feature["id"], "ben")]
                created = a.create_edit(pid, reviewer="Ana")
                b.wait(created["job"]["id"], timeout=300, poll=0.5)
                texts = ["she is a nurse", "he is a surgeon"]
                assert a.predict(pid, created["edit"]["id"], texts) == b.predict(pid, created["edit"]["id"], texts)
        finally:
            first.stop()
            second.stop()


def test_the_job_quota_is_one_limit_over_every_replica(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = make_world(tmp_path_factory.mktemp("quota"))
    limit, tries = 3, 10
    env = {"EDITING_SERVICE_WORKER": "false", "EDITING_SERVICE_JOBS_PER_PRINCIPAL": str(limit),
           "EDITING_SERVICE_JOB_WINDOW_S": "3600"}
    with fresh_schema() as url:
        first = ServerProcess(root, database_url=url, env=env)
        second = ServerProcess(tmp_path_factory.mktemp("quota-b"), database_url=url,
                               env={k: v for k, v in first.env.items() if k.startswith("EDITING_SERVICE_")})
        first.start(), second.start()
        try:
            with EditingClient(first.url, token=TOKENS["ana"]) as a:
                projects = [a.create_project(name=f"q{i}", model=str(root / "models" / "bert"),
                                             dataset={"inline": spec_for(root)}, settings=TINY_SETTINGS)["id"]
                            for i in range(tries)]

            def discover(index: int) -> int:
                server = (first, second)[index % 2]
                return httpx.post(f"{server.url}/v1/projects/{projects[index]}/jobs", json={"kind": "discover"},
                                  headers={"Authorization": f"Bearer {TOKENS['ana']}"}, timeout=60).status_code

            with ThreadPoolExecutor(tries) as pool:
                statuses = list(pool.map(discover, range(tries)))
            assert sorted(statuses) == [202] * limit + [429] * (tries - limit), statuses
            with EditingClient(second.url, token=TOKENS["ben"]) as b:  # another principal has its own count
                assert b.discover(projects[statuses.index(429)])["status"] == "queued"
        finally:
            first.stop()
            second.stop()
