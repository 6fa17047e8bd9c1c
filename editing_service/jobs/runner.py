"""Running one job: the pipeline step it names, then what its results mean for the store.

`discover` runs SAEs, attribution and cards in the project's artifact folder and loads the circuit
into the features table; `edit` applies the edit's snapshot of flags and records the report's figures.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from editing_service.artifacts import ArtifactDir
from editing_service.config import ServiceConfig
from editing_service.features.flags import Flag, FlagSet
from editing_service.pipeline import run_discover, run_edit
from editing_service.report.schema import HEADLINE_METRICS, Report
from editing_service.settings import RunSettings
from editing_service.store import (
    Database,
    JobRecord,
    get_edit,
    get_project,
    replace_features,
    set_edit_summary,
)

Progress = Callable[[str, float], None]
UNKNOWN_KIND = "Unknown job kind {kind!r}; the kinds are discover and edit."


class JobCancelled(Exception):
    """Raised from a progress report once someone has asked to cancel the job."""


def project_settings(project: Any, config: ServiceConfig) -> RunSettings:
    """The run settings of a project: its stored overrides, its spec and model, the service's device."""
    overrides = dict(project.settings)
    model = {**overrides.pop("model", {}), "path": project.model_ref, "device": config.device}
    return RunSettings.model_validate({**overrides, "spec": project.spec_ref, "model": model})


def feature_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The features table's rows from a features.json document: every circuit feature, its card if any."""
    cards = {card["id"]: card for card in document.get("cards", [])}
    kinds: dict[str, list[str]] = defaultdict(list)
    for suggestion in document.get("suggestions", []):
        kinds[suggestion["id"]].append(suggestion["kind"])
    return [
        {"site": c["site"], "feature": c["feature"], "score": c["score"], "rank": c["rank"],
         "label": cards.get(c["id"], {}).get("label"), "suggestions": sorted(set(kinds.get(c["id"], []))),
         "card": cards.get(c["id"])}
        for c in document["circuit"]
    ]


def report_summary(report: Report) -> dict[str, Any]:
    """The headline figures of every report row, for listings."""
    return {
        "rows": {row.name: {k: row.metric(k) for k in HEADLINE_METRICS} for row in report.rows},
        "seconds": report.seconds,
    }


def _discover(db: Database, config: ServiceConfig, job: JobRecord, progress: Progress) -> None:
    project = get_project(db, job.project_id)
    run_discover(project_settings(project, config), project.artifacts_dir, progress=progress)
    document = json.loads(ArtifactDir(Path(project.artifacts_dir)).features.read_text())
    replace_features(db, project.id, feature_rows(document))


def _edit(db: Database, config: ServiceConfig, job: JobRecord, progress: Progress) -> None:
    project = get_project(db, job.project_id)
    edit = get_edit(db, project.id, job.params["edit_id"])
    flags = FlagSet(flags=[Flag(**flag) for flag in edit.flags], policy=edit.policy)
    report = run_edit(project.artifacts_dir, flags, progress=progress, edit_out=edit.out_dir)
    set_edit_summary(db, edit.id, report_summary(report))


def run_job(db: Database, config: ServiceConfig, job: JobRecord, progress: Progress) -> None:
    """Run `job` to the end; raises on failure (and JobCancelled from `progress` on cancellation)."""
    steps = {"discover": _discover, "edit": _edit}
    if job.kind not in steps:
        raise ValueError(UNKNOWN_KIND.format(kind=job.kind))
    steps[job.kind](db, config, job, progress)
