"""Running one job: the pipeline step it names, then what its results mean for the store.

`discover` runs SAEs, attribution and cards in its discovery's own folder (emptied first: a retried
attempt starts clean, and no other discovery is touched), then promotes it: its circuit replaces the
features and it becomes current, in one transaction. `edit` applies the edit's snapshot of flags to
the discovery it was made on and records the report's figures.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from editing_service.artifacts import ArtifactDir
from editing_service.config import ServiceConfig
from editing_service.features.document import FeaturesDocument
from editing_service.features.flags import Flag, FlagSet
from editing_service.pipeline import run_discover, run_edit
from editing_service.report.schema import HEADLINE_METRICS, Report
from editing_service.sae import sae_digest
from editing_service.settings import RunSettings
from editing_service.store import (
    Database,
    JobRecord,
    count_features,
    current_discovery,
    discovery_for_job,
    edit_discovery_dir,
    get_edit,
    get_project,
    promote_discovery,
    set_edit_summary,
)

Progress = Callable[[str, float], None]
UNKNOWN_KIND = "Unknown job kind {kind!r}; the kinds are discover and edit."


class JobCancelled(Exception):
    """Raised from a progress report once someone has asked to cancel the job."""


def project_settings(project: Any, config: ServiceConfig, overrides: dict[str, Any] | None = None) -> RunSettings:
    """The run settings of a project: its stored overrides (or a discovery's), its spec and model, the
    service's device and placement."""
    overrides = dict(project.settings if overrides is None else overrides)
    model = {**overrides.pop("model", {}), "path": project.model_ref, **config.model_placement()}
    return RunSettings.model_validate({**overrides, "spec": project.spec_ref, "model": model})


def feature_rows(document: FeaturesDocument) -> list[dict[str, Any]]:
    """The features table's rows from a features.json document: every circuit feature, its card if any."""
    cards = {card.id: card for card in document.cards}
    kinds = document.suggestion_kinds()
    rows = []
    for c in document.circuit:
        card = cards.get(c.id)
        rows.append({"site": c.site, "feature": c.feature, "score": c.score, "rank": c.rank,
                     "label": None if card is None else card.label, "suggestions": kinds.get(c.id, []),
                     "card": None if card is None else card.to_dict()})
    return rows


def report_summary(report: Report) -> dict[str, Any]:
    """The headline figures of every report row, for listings."""
    return {
        "rows": {row.name: {k: row.metric(k) for k in HEADLINE_METRICS} for row in report.rows},
        "seconds": report.seconds,
    }


def sae_digests(folder: Path) -> dict[str, str]:
    """The digest of every site's SAE in a discovery folder ({} when it has none)."""
    saes = ArtifactDir(folder).saes
    if not saes.is_dir():
        return {}
    return {p.name: sae_digest(p) for p in sorted(saes.iterdir()) if (p / "cfg.json").is_file()}


def _discover(db: Database, config: ServiceConfig, job: JobRecord, progress: Progress) -> None:
    discovery = discovery_for_job(db, job)
    if discovery.status == "succeeded":  # promoted by an attempt that died before finishing its job
        return
    project = get_project(db, job.project_id)
    folder = discovery.artifacts_dir
    shutil.rmtree(folder, ignore_errors=True)
    run_discover(project_settings(project, config, discovery.settings), folder, progress=progress)
    document = FeaturesDocument.read(ArtifactDir(folder).features)
    # A project discovered before discoveries were versioned keeps its SAEs in its own folder.
    unversioned = current_discovery(db, project.id) is None and count_features(db, project.id) > 0
    promoted = promote_discovery(
        db, discovery.id, job=job, rows=feature_rows(document), sae_digests=sae_digests(folder),
        previous_digests=sae_digests(project.artifacts_dir) if unversioned else None,
    )
    if promoted is None:
        raise RuntimeError(f"Discovery {discovery.id!r} was not made current: its job is no longer this attempt's.")


def _edit(db: Database, config: ServiceConfig, job: JobRecord, progress: Progress) -> None:
    project = get_project(db, job.project_id)
    edit = get_edit(db, project.id, job.params["edit_id"])
    flags = FlagSet(flags=[Flag(**flag) for flag in edit.flags], policy=edit.policy)
    report = run_edit(edit_discovery_dir(db, edit), flags, progress=progress, edit_out=edit.out_dir)
    set_edit_summary(db, edit.id, report_summary(report))


def run_job(db: Database, config: ServiceConfig, job: JobRecord, progress: Progress) -> None:
    """Run `job` to the end; raises on failure (and JobCancelled from `progress` on cancellation)."""
    steps = {"discover": _discover, "edit": _edit}
    if job.kind not in steps:
        raise ValueError(UNKNOWN_KIND.format(kind=job.kind))
    steps[job.kind](db, config, job, progress)
