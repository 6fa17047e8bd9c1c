"""What a finished job leaves its user, over HTTP against a real server process: an edit with
`n_boot: 0` reports no bootstrap intervals (and still succeeds), and a failed job's error names the
files it missed relative to the service home, never by an absolute server path."""

from __future__ import annotations

import re
import shutil

import pytest
from api_world import TINY_SETTINGS, spec_for
from http_server import ServerProcess

from editing_service.client import EditingClient, JobFailed

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/[^\s'\"]+")


def test_n_boot_zero_gives_a_report_without_bootstrap_intervals(server: ServerProcess, ana: EditingClient) -> None:
    settings = {**TINY_SETTINGS, "edit": {"n_boot": 0, "baselines": []}}
    project = ana.create_project(name="no-boot", model=str(server.root / "models" / "bert"),
                                 dataset={"inline": spec_for(server.root)}, settings=settings)["id"]
    ana.wait(ana.discover(project)["id"], timeout=300, poll=0.5)
    feature = ana.features(project, limit=1)["items"][0]
    created = ana.create_edit(project, reviewer="Ana", features=[{"site": feature["site"],
                                                                  "feature": feature["feature"]}])
    ana.wait(created["job"]["id"], timeout=300, poll=0.5)

    report = ana.report(project, created["edit"]["id"])
    assert report.rows and all(row.bootstrap.n_boot == 0 for row in report.rows)
    for row in report.rows:
        assert (row.intervals.accuracy, row.intervals.group_balanced_accuracy,
                row.intervals.worst_group_accuracy) == (None, None, None)
        assert all(cell.ci is None and cell.wilson_ci is not None for cell in row.cells)
    assert all(entry.intervals_overlap is None for by_metric in report.comparison.versus.values()
               for entry in by_metric.values())
    html = ana.report_html(project, created["edit"]["id"])
    assert "no bootstrap (n_boot 0)" in html and "0 resamples" not in html


def test_a_failed_jobs_error_shows_no_absolute_server_path(server: ServerProcess, ana: EditingClient) -> None:
    data = server.root / "data" / "vanishing.csv"
    shutil.copy(server.root / "data" / "bios.csv", data)
    spec = {**spec_for(server.root), "source": {"kind": "file", "path": str(data)}}
    project = ana.create_project(name="vanishing", model=str(server.root / "models" / "bert"),
                                 dataset={"inline": spec}, settings=TINY_SETTINGS)["id"]
    data.unlink()  # the data file goes away between creating the project and discovering it

    job = ana.discover(project)["id"]
    with pytest.raises(JobFailed, match="vanishing.csv"):
        ana.wait(job, timeout=300, poll=0.5)
    failed = ana.job(job)
    assert failed["status"] == "failed" and "vanishing.csv" in failed["error"]
    assert not ABSOLUTE_PATH.findall(failed["error"]), failed["error"]
    assert "../data/vanishing.csv" in failed["error"]  # shown relative to the service home
