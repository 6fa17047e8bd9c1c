"""The `edit` step: run every report row (the row registry), the budget curve, and write the report.

Reads what `discover` wrote (run.json, the original model, the SAEs, the caches, attribution.json,
features.json) and writes models/edited/ (SHIFT with the retrained head, with a model card), report.json
(the typed `Report`) and report.html.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir, check_output_folder
from editing_service.circuit import AttributionDocument
from editing_service.data import DatasetSpec, TextSplit, load_role, load_spec, stereotype_labels
from editing_service.edit import FeatureAblation, check_features, load_model, save_model
from editing_service.edit.budget import budget_points
from editing_service.edit.rows import RowContext, RowSkipped, rows_to_run
from editing_service.edit.served import served_form_name
from editing_service.features.document import FeaturesDocument
from editing_service.features.flags import FlagSet
from editing_service.model.classifier import head_logits
from editing_service.pipeline.circuit import flagged_circuit
from editing_service.pipeline.common import ProgressFn, group_attribute, quiet, resolve_device
from editing_service.pipeline.discover import token_sample
from editing_service.pipeline.original_head import read_original_head
from editing_service.report import (
    Report,
    Row,
    SkippedRow,
    build_report,
    evaluate_row,
    model_card,
    render_html,
)
from editing_service.report.budget import budget_curve
from editing_service.sae import SAE, load_sae
from editing_service.settings import EditSettings, RunSettings

__all__ = ["row_context", "run_edit", "write_report"]

logger = logging.getLogger(__name__)

NO_ATTRIBUTE_TO_ERASE = (
    "erase_at_edited_sites needs a protected attribute with groups in the validate split; dataset {name!r} "
    "has none."
)
UNKNOWN_FLAG_SITE = "Flagged feature {id} names site {site!r}, which has no SAE in this run; the sites are {known}."
NOT_AT_EDIT_SITES = "No flagged feature is at the run's edit sites {sites}; flags at {others} alone edit nothing."


def served_agreement(saes: dict[str, SAE], edits: list, validate_cache: ActivationCache,
                     n_tokens: int = 16384) -> dict[str, dict[str, float]]:
    """Per edited site: precision and recall of the served firings of the flagged features against the SAE's
    own codes, on validate tokens (held out from a TopK served form's fit, which uses training tokens; a
    JumpReLU SAE's, BatchTopK-trained ones included, is served exactly)."""
    out = {}
    for edit in edits:
        sae = saes[edit.site.name]
        if isinstance(edit, FeatureAblation):
            x = torch.from_numpy(token_sample(validate_cache, edit.site.name, n_tokens)).to(sae.W_enc.device)
            out[edit.site.name] = edit.agreement(sae, x)
    return out


class _Evaluator:
    """Scores a row's head on its evaluation-split features as a report row."""

    def __init__(self, spec: DatasetSpec, split: TextSplit, settings: RunSettings) -> None:
        self.spec, self.split, self.settings = spec, split, settings
        self.attribute = group_attribute(spec)
        has_stereotype = self.attribute and spec.attribute(self.attribute).stereotype
        self.stereotype = stereotype_labels(spec, split, self.attribute) if has_stereotype else None

    def score(self, *, name: str, title: str, role: str, description: str, features: np.ndarray,
              head: torch.nn.Linear) -> Row:
        logits = head_logits(head, features)
        return evaluate_row(
            name=name, title=title, role=role, description=description, y_true=self.split.labels,  # type: ignore[arg-type]
            y_pred=logits.argmax(1).cpu().numpy(), label_names=self.split.label_names, groups=self.split.groups,
            attribute=self.attribute, stereotype=self.stereotype, representation=features,
            n_boot=self.settings.edit.n_boot, seed=self.settings.edit.seed,
        )


def _edit_sites(classifier, settings: RunSettings) -> list[str]:  # noqa: ANN001
    return [s.name for s in classifier.resolve_sites(settings.sites)]


def row_context(out: str | Path, flags: FlagSet, *, progress: ProgressFn = quiet,
                edit_settings: dict[str, Any] | None = None,
                unedited_reads: dict[str, np.ndarray] | None = None) -> RowContext:
    """Everything the rows of the discovered run in `out` read, with `flags` applied (and `edit_settings`
    overriding the run's edit settings).

    SHIFT ablates the flags at the run's sites; flags at sites trained only for a row (embeddings.out
    for `shift_embedding`) are that row's."""
    artifacts = ArtifactDir(Path(out))
    settings = RunSettings.model_validate_json(artifacts.require(artifacts.run_config).read_text())
    if edit_settings:
        settings = settings.model_copy(
            update={"edit": EditSettings.model_validate({**settings.edit.model_dump(), **edit_settings})})
    spec = load_spec(settings.spec)
    classifier = load_model(artifacts.original_model, device=resolve_device(settings.model.device),
                            device_map=settings.model.placement())
    saes = {p.name: load_sae(p).to(classifier.device) for p in sorted(artifacts.saes.iterdir()) if p.is_dir()}
    all_flagged = flags.spurious()
    for site, indices in all_flagged.items():
        if site not in saes:
            raise ValueError(UNKNOWN_FLAG_SITE.format(id=f"{site}/{indices[0]}", site=site, known=sorted(saes)))
        check_features(site, list(indices), saes[site].d_sae)  # before any work, the circuit numbers included
    edit_sites = _edit_sites(classifier, settings)
    flagged = {site: v for site, v in all_flagged.items() if site in edit_sites}
    if not flagged:
        raise ValueError(NOT_AT_EDIT_SITES.format(sites=edit_sites, others=sorted(all_flagged)))
    scores = AttributionDocument.read(artifacts.attribution) if artifacts.attribution.is_file() else {}
    attribute = group_attribute(spec)
    validate = load_role(spec, "validate")
    can_erase = bool(attribute) and attribute in validate.groups
    if settings.edit.erase_at_edited_sites is True and not can_erase:
        raise ValueError(NO_ATTRIBUTE_TO_ERASE.format(name=spec.name))
    if settings.edit.erase_at_edited_sites == "auto":
        settings = settings.model_copy(update={"edit": settings.edit.model_copy(
            update={"erase_at_edited_sites": can_erase})})
    C, C_source, origin = read_original_head(artifacts).retrained_heads(classifier.kind)
    if settings.edit.head_C != "validate":
        C, C_source = float(settings.edit.head_C), "the run's settings"
    return RowContext(
        classifier=classifier, saes=saes, flagged=flagged, all_flagged=all_flagged, scores=scores,
        train_cache=ActivationCache.open(artifacts.cache("train")),
        validate_cache=ActivationCache.open(artifacts.cache("validate")), spec=spec,
        train=load_role(spec, "train"), validate=validate, evaluate=load_role(spec, "evaluate"),
        attribute=attribute, settings=settings, fixed_C=C, fixed_C_source=C_source, original_head_origin=origin,
        progress=progress, unedited_reads={} if unedited_reads is None else unedited_reads,
    )


def run_edit(out: str | Path, flags: FlagSet, *, progress: ProgressFn = quiet,
             edit_out: str | Path | None = None, edit_settings: dict[str, Any] | None = None,
             unedited_reads: dict[str, np.ndarray] | None = None) -> Report:
    """Apply `flags` to the discovered run in `out`; returns the report (also written to disk).

    The edited model, flags and report go to `edit_out` (default: `out` itself), so one discovery
    can serve several edits; `edit_settings` override the run's edit settings (rows, budget, served
    form, erasure) for this edit. `unedited_reads` lets edits of the same classifier share their reads of
    the unedited model (`RowContext.read`).
    """
    started = time.perf_counter()
    if edit_out is not None:
        check_output_folder(Path(edit_out), edited_run=Path(out))
    artifacts = ArtifactDir(Path(out))
    results = ArtifactDir(Path(edit_out)) if edit_out is not None else artifacts
    ctx = row_context(out, flags, progress=progress, edit_settings=edit_settings, unedited_reads=unedited_reads)
    results.root.mkdir(parents=True, exist_ok=True)
    settings, spec, classifier, evaluate = ctx.settings, ctx.spec, ctx.classifier, ctx.evaluate
    flagged, all_flagged = ctx.flagged, ctx.all_flagged
    edit_sites = _edit_sites(classifier, settings)
    circuit_part = flagged_circuit(artifacts, classifier, ctx.saes, flagged, ctx.train, ctx.train_cache)
    evaluator = _Evaluator(spec, evaluate, settings)
    rows: list[Row] = []
    skipped: list[SkippedRow] = []
    for row in rows_to_run(settings.edit.baselines):
        try:
            output = row.run(ctx)
        except RowSkipped as why:
            skipped.append(SkippedRow(name=row.name, title=row.title, reason=str(why.args[0])))
            logger.info("row %s not run: %s", row.name, why.args[0])
            continue
        rows.append(evaluator.score(name=row.name, title=row.title, role=row.role, description=output.description,
                                    features=output.features, head=output.head))
    curve = None
    if settings.edit.budget and ctx.attribute is not None:
        base, oracle = next(r for r in rows if r.name == "original"), next((r for r in rows if r.name == "oracle"), None)
        curve = budget_curve(budget_points(ctx, settings.edit.budget), base=base.group_balanced_accuracy,
                             oracle=None if oracle is None else oracle.group_balanced_accuracy)

    # The edited model: SHIFT with the retrained head.
    classifier.set_interventions(ctx.shift_edits)
    classifier.set_head(ctx.shift_head)
    features = FeaturesDocument.read(artifacts.features) if artifacts.features.is_file() else None
    labels = {} if features is None else features.labels()
    flag_rows = [{"site": f.site, "feature": f.feature, "label": labels.get(f.id), "who": f.reviewer,
                  "why": f.rationale, "source": f.source} for f in flags.flags]
    extra = sorted(set(all_flagged) - set(flagged))
    report = build_report(
        title=f"SHIFT edit of {classifier.source.name_or_path} on {spec.name}",
        dataset={"name": spec.name, "subsets": dict(spec.roles), "evaluated_on": evaluate.name},
        model={"base_model": classifier.source.name_or_path, "sha256": classifier.source.weights_sha256,
               "classifier_kind": classifier.kind, "edited_model": str(results.edited_model)},
        rows=rows, skipped_rows=skipped, budget_curve=curve, flags=flag_rows, sae=settings.sae.model_dump(),
        retrain={"head": "logistic regression", "C": ctx.C, "C_source": ctx.C_source, "seed": settings.edit.seed,
                 "trained_on": ctx.train.name, "mode": settings.edit.mode, "baselines_use_the_same_C": True,
                 "edit_sites": edit_sites},
        flag_policy=flags.policy, flag_selection_subset=None if features is None else features.cards_split,
        limitations=[f"Flags at {', '.join(extra)} are used only by the rows that edit those sites; SHIFT edits "
                     f"{', '.join(edit_sites)}."] if extra else [],
    )
    report.edit = {
        "served_form": served_form_name(ctx.saes, edit_sites, settings.edit.served_form),
        "served_agreement": served_agreement(ctx.saes, ctx.shift_ablations, ctx.validate_cache),
        "erased_at": [e.site.name for e in ctx.shift_erasers],
        **({"erasure": {"method": "LEACE (concept-erasure)", "attribute": ctx.attribute,
                        "fitted_on": ctx.validate.name, "cell_balanced": True}} if ctx.shift_erasers else {}),
    }
    report.flagged_circuit = circuit_part
    report.seconds = round(time.perf_counter() - started, 1)
    save_model(classifier, results.edited_model,
               provenance={"spec": spec.name, "flags": [f.model_dump() for f in flags.flags],
                           "flag_policy": flags.policy, "retrain": report.retrain})
    (results.edited_model / "README.md").write_text(model_card(report, row="shift_retrained"))
    results.flags.write_text(flags.model_dump_json(indent=2))
    write_report(report, results)
    logger.info("Report written to %s (%.0f s)", results.report_html, report.seconds)
    return report


def write_report(report: Report, results: ArtifactDir) -> None:
    """report.json and report.html."""
    report.write(results.report_json)
    results.report_html.write_text(render_html(report))
