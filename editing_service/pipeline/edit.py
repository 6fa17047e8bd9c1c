"""The `edit` step: ablate the flagged features, retrain the head, run the baselines, write the report.

Reads what `discover` wrote (run.json, the original model, the SAEs, the training cache, features.json)
and writes models/edited/ (with a model card), report.json and report.html.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.data import DatasetSpec, TextSplit, load_role, load_spec, stereotype_labels
from editing_service.edit import (
    FeatureAblation,
    check_features,
    head_features,
    load_model,
    retrain_head,
    save_model,
)
from editing_service.edit.erasure import fit_site_erasers
from editing_service.edit.head_choice import choose_head_C
from editing_service.features import load_lexicon
from editing_service.features.flags import FlagSet
from editing_service.model import TextClassifier, fit_linear_head
from editing_service.model.classifier import copy_head, head_logits
from editing_service.pipeline.circuit import flagged_circuit
from editing_service.pipeline.common import ProgressFn, group_attribute, quiet, resolve_device
from editing_service.pipeline.discover import token_sample
from editing_service.report import build_report, evaluate_row, model_card, render_html
from editing_service.report.baselines import delete_words, random_features
from editing_service.sae import SAE, TopKGate, TopKSAE, fit_topk_gate, load_sae, topk_to_jumprelu
from editing_service.settings import EditSettings, RunSettings, ServedForm

logger = logging.getLogger(__name__)

NO_ATTRIBUTE_TO_ERASE = (
    "erase_at_edited_sites needs a protected attribute with groups in the validate split; dataset {name!r} "
    "has none."
)
NOT_DISCOVERED = "{path} has no discovery results (run.json missing): run `discover` first."
UNKNOWN_FLAG_SITE = "Flagged feature {id} names site {site!r}, which has no SAE in this run; the sites are {known}."


def _served_sae(sae: SAE, cache: ActivationCache, site: str, form: ServedForm) -> tuple[SAE, TopKGate | None]:
    """How a site's flagged features are served: ReLU / JumpReLU SAEs as they are; TopK SAEs through
    per-feature JumpReLU thresholds or through the token-cut gate, fitted on the training tokens."""
    if not isinstance(sae, TopKSAE):
        return sae, None
    if form == "gate":
        return sae, fit_topk_gate(sae, cache.site(site), n_sample=16384)
    return topk_to_jumprelu(sae, cache.site(site), n_sample=8192), None


def _alive(sae: SAE, cache: ActivationCache, site: str, n_rows: int = 16384) -> np.ndarray:
    rows = np.random.default_rng(0).choice(cache.n_tokens, size=min(n_rows, cache.n_tokens), replace=False)
    with torch.no_grad():
        f = sae.encode(torch.from_numpy(cache.read(site, np.sort(rows))).to(sae.W_enc.device))
    return (f > 0).any(0).cpu().numpy()


def build_ablations(
    classifier: TextClassifier, saes: dict[str, SAE], features: dict[str, list[int]], cache: ActivationCache,
    *, mode: str, served: dict[str, tuple[SAE, TopKGate | None]] | None = None, form: ServedForm = "jumprelu",
) -> list[FeatureAblation]:
    """The served ablation of `features` ({site: indices}) at every site that has some.

    `served` memoises each site's served form (the TopK conversion's fit) across calls.
    """
    served = {} if served is None else served
    sites = {s.name: s for s in classifier.resolve_sites(list(features))}
    edits = []
    for name, indices in features.items():
        if name not in served:
            served[name] = _served_sae(saes[name], cache, name, form)
        sae, gate = served[name]
        ablation = FeatureAblation.from_sae(sites[name], sae, indices, gate=gate)
        if mode == "mean":
            with torch.no_grad():
                acts = ablation.activations(torch.from_numpy(cache.read(name)).to(ablation.W_enc.device))
            ablation = FeatureAblation.from_sae(sites[name], sae, indices, mode="mean", gate=gate,
                                                mean=acts.mean(0).cpu().numpy())
        edits.append(ablation)
    return edits


def served_agreement(saes: dict[str, SAE], edits: list[FeatureAblation], validate_cache: ActivationCache,
                     n_tokens: int = 16384) -> dict[str, dict[str, float]]:
    """Per TopK site: precision and recall of the served firings of the flagged features against the TopK
    codes, on validate tokens (held out from the served form's fit, which uses training tokens)."""
    out = {}
    for edit in edits:
        sae = saes[edit.site.name]
        if isinstance(sae, TopKSAE):
            x = torch.from_numpy(token_sample(validate_cache, edit.site.name, n_tokens)).to(sae.W_enc.device)
            out[edit.site.name] = edit.agreement(sae, x)
    return out


class _Evaluator:
    """Scores predictions on the evaluation split as report rows."""

    def __init__(self, spec: DatasetSpec, split: TextSplit, settings: RunSettings) -> None:
        self.spec, self.split, self.settings = spec, split, settings
        self.attribute = group_attribute(spec)
        has_stereotype = self.attribute and spec.attribute(self.attribute).stereotype
        self.stereotype = stereotype_labels(spec, split, self.attribute) if has_stereotype else None
        self.rows: list[dict[str, Any]] = []

    def add(self, name: str, description: str, features: np.ndarray, head: torch.nn.Linear) -> None:
        logits = head_logits(head, features)
        self.rows.append(evaluate_row(
            name=name, description=description, y_true=self.split.labels, y_pred=logits.argmax(1).cpu().numpy(),
            label_names=self.split.label_names, groups=self.split.groups, attribute=self.attribute,
            stereotype=self.stereotype, representation=features, n_boot=self.settings.edit.n_boot,
            seed=self.settings.edit.seed,
        ))


def _original_head_C(artifacts: ArtifactDir) -> tuple[float, str]:
    """The regularisation the original head was fitted with (chosen on the validate split), and where it
    came from; a sequence classifier's own head has none, so its retrained head gets C = 1."""
    provenance = json.loads((artifacts.original_model / "config.json").read_text()).get("provenance", {})
    if "C" in provenance:
        return float(provenance["C"]), "the original head's, chosen on the validate split"
    return 1.0, "1.0 (the original head is the model's own)"


def run_edit(out: str | Path, flags: FlagSet, *, progress: ProgressFn = quiet,
             edit_out: str | Path | None = None, edit_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply `flags` to the discovered run in `out`; returns the report (also written to disk).

    The edited model, flags and report go to `edit_out` (default: `out` itself), so one discovery
    can serve several edits; `edit_settings` override the run's edit settings for this edit.
    """
    started = time.perf_counter()
    artifacts = ArtifactDir(Path(out))
    results = ArtifactDir(Path(edit_out)) if edit_out is not None else artifacts
    results.root.mkdir(parents=True, exist_ok=True)
    if not artifacts.run_config.is_file():
        raise FileNotFoundError(NOT_DISCOVERED.format(path=artifacts.root))
    settings = RunSettings.model_validate_json(artifacts.run_config.read_text())
    if edit_settings:
        settings = settings.model_copy(
            update={"edit": EditSettings.model_validate({**settings.edit.model_dump(), **edit_settings})})
    batch = settings.model.batch_size
    spec = load_spec(settings.spec)
    classifier = load_model(artifacts.original_model, device=resolve_device(settings.model.device))
    saes = {p.name: load_sae(p).to(classifier.device) for p in sorted(artifacts.saes.iterdir()) if p.is_dir()}
    flagged = flags.spurious()
    for site, indices in flagged.items():
        if site not in saes:
            raise ValueError(UNKNOWN_FLAG_SITE.format(id=f"{site}/{indices[0]}", site=site, known=sorted(saes)))
        check_features(site, list(indices), saes[site].d_sae)  # before any work, the circuit numbers included
    train_cache = ActivationCache.open(artifacts.cache("train"))
    train, evaluate = load_role(spec, "train"), load_role(spec, "evaluate")
    rows = _Evaluator(spec, evaluate, settings)
    original_head = copy_head(classifier.head)
    circuit_part = flagged_circuit(artifacts, classifier, saes, flagged, train, train_cache)
    mode, seed = settings.edit.mode, settings.edit.seed
    validate = load_role(spec, "validate")
    attribute = group_attribute(spec)
    if settings.edit.erase_at_edited_sites and (not attribute or attribute not in validate.groups):
        raise ValueError(NO_ATTRIBUTE_TO_ERASE.format(name=spec.name))

    def step(name: str):
        return lambda f: progress(name, f)

    eval_original = head_features(classifier, evaluate.texts, batch_size=batch, on_progress=step("eval:original"))
    rows.add("original", "The classifier as given (head trained on the training set).", eval_original, original_head)

    served: dict[str, tuple[SAE, TopKGate | None]] = {}
    form = settings.edit.served_form
    edits = build_ablations(classifier, saes, flagged, train_cache, mode=mode, served=served, form=form)
    edit_info: dict[str, Any] = {
        "served_agreement": served_agreement(saes, edits, ActivationCache.open(artifacts.cache("validate"))),
        "erased_at": [],
        "served_form": form,
    }
    if settings.edit.erase_at_edited_sites:
        classifier.set_interventions(edits)
        progress("erasure", 0.0)
        erasers = fit_site_erasers(classifier, classifier.resolve_sites(list(flagged)), validate.texts,
                                   labels=validate.labels, groups=validate.groups[attribute], attribute=attribute,
                                   batch_size=batch, seed=seed)
        progress("erasure", 1.0)
        edits = [*edits, *erasers]  # at each site the ablation runs first, then the eraser
        edit_info["erased_at"] = [e.site.name for e in erasers]
        edit_info["erasure"] = {"method": "LEACE (concept-erasure)", "attribute": attribute,
                                "fitted_on": validate.name, "cell_balanced": True}
    classifier.set_interventions(edits)
    eval_shift = head_features(classifier, evaluate.texts, batch_size=batch, on_progress=step("eval:shift"))
    rows.add("shift", "Flagged features ablated, original head.", eval_shift, original_head)
    train_shift = head_features(classifier, train.texts, batch_size=batch, on_progress=step("retrain:shift"))
    C, C_source = settings.edit.head_C, "the run's settings"
    if C == "validate":
        C, C_source = _original_head_C(artifacts)
    classifier.fit_head(train_shift, train.labels, C=C, seed=seed)
    rows.add("shift_retrained", "Flagged features ablated, head retrained on the training set.", eval_shift,
             classifier.head)
    shift_head = copy_head(classifier.head)
    n_flagged = sum(len(v) for v in flagged.values())

    if "random_ablation" in settings.edit.baselines:
        alive = {site: _alive(saes[site], train_cache, site) for site in flagged}
        chosen = random_features(flagged, alive, seed=seed)
        classifier.set_interventions(build_ablations(classifier, saes, chosen, train_cache, mode=mode, served=served,
                                                     form=form))
        retrain_head(classifier, train.texts, train.labels, batch_size=batch, C=C, seed=seed,
                     on_progress=step("retrain:random"))  # SHIFT's C: the baselines get the same head
        features = head_features(classifier, evaluate.texts, batch_size=batch, on_progress=step("eval:random"))
        rows.add("random_ablation", f"{n_flagged} random live features ablated at the same sites, head retrained.",
                 features, classifier.head)
    classifier.set_interventions([])
    if "token_deletion" in settings.edit.baselines:
        lexicon = load_lexicon(settings.suggestions.lexicon)
        train_features = head_features(classifier, delete_words(train.texts, lexicon.words), batch_size=batch,
                                       on_progress=step("retrain:token_deletion"))
        head = fit_linear_head(train_features, train.labels, n_classes=len(spec.labels), C=C, seed=seed)
        features = head_features(classifier, delete_words(evaluate.texts, lexicon.words), batch_size=batch,
                                 on_progress=step("eval:token_deletion"))
        rows.add("token_deletion", f"Words of the {lexicon.name!r} lexicon deleted from every input, head "
                 "retrained.", features, head)
    if "oracle" in settings.edit.baselines and "oracle" in spec.roles:
        oracle = load_role(spec, "oracle")
        oracle_features = head_features(classifier, oracle.texts, batch_size=batch, on_progress=step("oracle"))
        oracle_C = settings.edit.head_C
        if oracle_C == "validate":
            oracle_C, _ = choose_head_C(
                train_features=oracle_features, train_labels=oracle.labels,
                validate_features=ActivationCache.open(artifacts.cache("validate")).head_features,
                validate_labels=validate.labels,
                validate_groups=validate.groups.get(attribute) if attribute else None,
                label_names=list(spec.labels), seed=seed,
            )
        head = fit_linear_head(oracle_features, oracle.labels, n_classes=len(spec.labels), C=oracle_C, seed=seed)
        rows.add("oracle", f"Head trained on the group-balanced subset {oracle.name!r} (no edit).",
                 eval_original, head)

    # The edited model: SHIFT with the retrained head.
    classifier.set_interventions(edits)
    classifier.set_head(shift_head)
    features_doc = json.loads(artifacts.features.read_text()) if artifacts.features.is_file() else {}
    labels = {c["id"]: c.get("label") for c in features_doc.get("cards", [])}
    flag_rows = [{"site": f.site, "feature": f.feature, "label": labels.get(f.id), "who": f.reviewer,
                  "why": f.rationale, "source": f.source, "state": f.state} for f in flags.flags]
    report = build_report(
        title=f"SHIFT edit of {classifier.source.name_or_path} on {spec.name}",
        dataset={"name": spec.name, "subsets": dict(spec.roles), "evaluated_on": evaluate.name},
        model={"base_model": classifier.source.name_or_path, "sha256": classifier.source.weights_sha256,
               "classifier_kind": classifier.kind, "edited_model": str(results.edited_model)},
        rows=rows.rows, flags=flag_rows, sae=settings.sae.model_dump(),
        retrain={"head": "logistic regression", "C": C, "C_source": C_source, "seed": seed,
                 "trained_on": train.name, "mode": mode, "baselines_use_the_same_C": True},
        flag_policy=flags.policy, flag_selection_subset=features_doc.get("cards_split"),
    )
    report["edit"] = edit_info
    if circuit_part is not None:
        report["flagged_circuit"] = circuit_part
    report["seconds"] = round(time.perf_counter() - started, 1)
    save_model(classifier, results.edited_model,
               provenance={"spec": spec.name, "flags": [f.model_dump() for f in flags.flags],
                           "flag_policy": flags.policy, "retrain": report.get("retrain")})
    card = model_card(report, row="shift_retrained")
    (results.edited_model / "README.md").write_text(card)
    results.flags.write_text(flags.model_dump_json(indent=2))
    results.report_json.write_text(json.dumps(report, indent=2))
    results.report_html.write_text(render_html(report))
    logger.info("Report written to %s (%.0f s)", results.report_html, report["seconds"])
    return report
