"""The whole flow over real HTTP against a real server process, on SQLite and on PostgreSQL:
create, discover, poll, list, flag, edit, report, predict, download."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from api_world import TINY_SETTINGS, make_world, spec_for
from http_server import TOKENS, ServerProcess
from postgres import fresh_schema

from editing_service.client import EditingClient
from editing_service.edit import load_model

TEXTS = ["she is a nurse on the ward", "he works in the operating room", "his surgery team", "her patients"]


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def flow_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = make_world(tmp_path_factory.mktemp(f"flow-{request.param}"))
    if request.param == "sqlite":
        process = ServerProcess(root).start()
        yield process
        process.stop()
        return
    with fresh_schema() as url:
        process = ServerProcess(root, database_url=url).start()
        yield process
        process.stop()


def test_whole_flow(flow_server: ServerProcess, tmp_path: Path) -> None:
    root = flow_server.root
    with EditingClient(flow_server.url, token=TOKENS["ana"]) as ana:
        project = ana.create_project(name="tiny", model=str(root / "models" / "bert"),
                                     dataset={"inline": spec_for(root)}, settings=TINY_SETTINGS)
        assert project["features"] == 0 and ana.project(project["id"])["name"] == "tiny"
        assert any(p["id"] == project["id"] for p in ana.projects()["items"])

        job = ana.discover(project["id"])
        assert job["status"] == "queued" and job["kind"] == "discover"
        done = ana.wait(job["id"], timeout=300, poll=0.5)
        assert done["progress"] == pytest.approx(1.0) or done["step"]
        assert done["started_at"] is not None and done["finished_at"] is not None

        page = ana.features(project["id"], limit=5, sort="rank")
        assert page["total"] == ana.project(project["id"])["features"] > 5
        assert [f["rank"] for f in page["items"]] == sorted(f["rank"] for f in page["items"])
        by_score = ana.features(project["id"], sort="-score", limit=1000)["items"]
        assert [f["score"] for f in by_score] == sorted((f["score"] for f in by_score), reverse=True)
        site = page["items"][0]["site"]
        assert all(f["site"] == site for f in ana.features(project["id"], site=site, limit=1000)["items"])
        with_card = next(f for f in by_score if f["has_card"])
        card = ana.feature(project["id"], with_card["site"], with_card["feature"])
        assert card["card"]["top_examples"] and card["id"] == with_card["id"]

        suggested = ana.features(project["id"], suggestion="lexicon", limit=1000)["items"]
        assert suggested, "the tiny data's pronouns should be suggested by the gendered lexicon"
        applied = ana.apply_suggestions(project["id"], kind="lexicon", reviewer="Ana")
        assert {f["id"] for f in applied} == {f["id"] for f in suggested}
        assert all(f["source"] == "lexicon" and f["principal"] == "ana" for f in applied)
        kept = next(f for f in by_score if f["id"] not in {s["id"] for s in suggested})
        ana.flag(project["id"], kept["site"], kept["feature"], state="task_relevant",
                 rationale="fires on job words", reviewer="Ana")
        flagged = ana.features(project["id"], flag="spurious", limit=1000)["items"]
        assert {f["id"] for f in flagged} == {f["id"] for f in suggested}
        created_entry, *audit = ana.audit(project["id"])
        assert (created_entry["action"], created_entry["principal"], created_entry["subject"]) == (
            "project_created", "ana", "tiny")
        assert len(audit) == len(applied) + 1 and audit[-1]["reviewer"] == "Ana"

        created = ana.create_edit(project["id"], reviewer="Ana")
        edit, edit_job = created["edit"], created["job"]
        assert len(edit["flags"]) == len(suggested)
        ana.wait(edit_job["id"], timeout=300, poll=0.5)
        edit = ana.edit(project["id"], edit["id"])
        assert edit["status"] == "succeeded" and edit["summary"]["rows"]["shift_retrained"]["accuracy"] is not None
        assert [e["id"] for e in ana.edits(project["id"])] == [edit["id"]]

        report = ana.report(project["id"], edit["id"])
        names = [row["name"] for row in report["rows"]]
        assert names[:3] == ["original", "shift", "shift_retrained"]
        assert {f"{f['site']}/{f['feature']}" for f in report["flags"]} == {f["id"] for f in suggested}
        assert "<html" in ana.report_html(project["id"], edit["id"]).lower()

        archive = ana.download_model(project["id"], edit["id"], tmp_path / "edited.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp_path / "models", filter="data")
        local = load_model(tmp_path / "models" / f"{edit['id']}-edited")
        served = ana.predict(project["id"], edit["id"], TEXTS)
        assert served["classes"] == list(local.classes) and served["labels"] == local.predict(TEXTS)
        np.testing.assert_allclose(served["probabilities"], local.predict_proba(TEXTS), atol=1e-5)

        original = ana.predict(project["id"], edit["id"], TEXTS, model="original")
        content = ana.download_model(project["id"], edit["id"], tmp_path / "original.tar.gz", which="original")
        with tarfile.open(content) as tar:
            tar.extractall(tmp_path / "models", filter="data")
        local_original = load_model(tmp_path / "models" / f"{edit['id']}-original")
        np.testing.assert_allclose(original["probabilities"], local_original.predict_proba(TEXTS), atol=1e-5)
