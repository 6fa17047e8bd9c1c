"""The steps of a run in order, with progress callbacks and one artifact directory.

This is the outer layer that strings the core together (spec -> classifier -> activation caches ->
SAEs -> quality); the CLI and the API call these functions and nothing deeper.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from editing_service.activations import ActivationCache, collect_activations
from editing_service.artifacts import ArtifactDir
from editing_service.data import DatasetSpec, TextSplit, load_role, load_spec
from editing_service.model import Site, TextClassifier, load_classifier
from editing_service.report.sae_quality import sae_quality_report
from editing_service.sae import SAETrainer, save_sae
from editing_service.settings import ModelSettings, SAERunSettings, SAESettings

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]
CUDA_UNAVAILABLE = "Device 'cuda' was asked for but torch sees no CUDA device."


def _quiet(_step: str, _fraction: float) -> None:
    return None


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(CUDA_UNAVAILABLE)
    return torch.device(name)


def load_inputs(spec_ref: str, model: ModelSettings) -> tuple[DatasetSpec, TextClassifier]:
    """The dataset spec (a shipped name or a YAML path) and the classifier for its labels."""
    spec = load_spec(spec_ref)
    classifier = load_classifier(
        model.path, classes=list(spec.labels), probe_layer=model.probe_layer, max_length=model.max_length,
        device=resolve_device(model.device),
    )
    return spec, classifier


def group_attribute(spec: DatasetSpec) -> str | None:
    """The protected attribute reports group by: the spec's first one, if any."""
    return spec.protected[0].name if spec.protected else None


def cache_role(
    classifier: TextClassifier,
    spec: DatasetSpec,
    role: str,
    *,
    sites: list[Site],
    artifacts: ArtifactDir,
    dtype: str = "float32",
    batch_size: int = 32,
    progress: ProgressFn = _quiet,
) -> tuple[TextSplit, ActivationCache]:
    """Load the subset playing `role` and cache its activations (one forward pass)."""
    split = load_role(spec, role)
    cache = collect_activations(
        classifier, split.texts, sites=sites, out_dir=artifacts.cache(role), labels=split.labels,
        dtype=dtype, batch_size=batch_size, on_progress=lambda f: progress(f"activations:{role}", f),
        info={"role": role, "subset": split.name, "spec": spec.name},
    )
    return split, cache


def fit_original_head(classifier: TextClassifier, train_cache: ActivationCache) -> None:
    """Fit a probe classifier's head on the cached training features (sequence classifiers keep theirs)."""
    if classifier.kind == "probe":
        assert train_cache.labels is not None
        classifier.fit_head(train_cache.head_features, train_cache.labels)


def train_site_saes(
    cache: ActivationCache,
    sites: list[Site],
    settings: SAESettings,
    *,
    device: torch.device,
    artifacts: ArtifactDir,
    model_name: str,
    progress: ProgressFn = _quiet,
) -> dict[str, object]:
    """Train one SAE per site from the cache and save each in the SAELens layout."""
    saes: dict[str, object] = {}
    for i, site in enumerate(sites):
        trainer = SAETrainer(
            **settings.trainer_kwargs(), device=device, hook_name=site.name, model_name=model_name
        )
        trainer.fit(cache.site(site.name), progress=lambda f, i=i: progress("saes", (i + f) / len(sites)))
        saes[site.name] = trainer.sae_
        save_sae(trainer.sae_, artifacts.sae(site.name))
    progress("saes", 1.0)
    return saes


def run_saes(settings: SAERunSettings, out: str | Path, *, progress: ProgressFn = _quiet) -> dict[str, object]:
    """The `saes` command: cache train and validate, fit the head, train SAEs, write the quality report."""
    started = time.perf_counter()
    artifacts = ArtifactDir(Path(out))
    artifacts.root.mkdir(parents=True, exist_ok=True)
    spec, classifier = load_inputs(settings.spec, settings.model)
    sites = classifier.resolve_sites(settings.sites)
    batch = settings.model.batch_size
    _, train_cache = cache_role(classifier, spec, "train", sites=sites, artifacts=artifacts,
                                dtype=settings.cache_dtype, batch_size=batch, progress=progress)
    fit_original_head(classifier, train_cache)
    validate, validate_cache = cache_role(classifier, spec, "validate", sites=sites, artifacts=artifacts,
                                          dtype=settings.cache_dtype, batch_size=batch, progress=progress)
    saes = train_site_saes(train_cache, sites, settings.sae, device=classifier.device, artifacts=artifacts,
                           model_name=classifier.source.name_or_path, progress=progress)
    report = sae_quality_report(
        classifier, {site: saes[site.name] for site in sites}, train_cache=train_cache,
        validate=validate, validate_cache=validate_cache, attribute=group_attribute(spec),
        batch_size=batch, splice_check=settings.splice_check, progress=progress,
    )
    report["settings"] = settings.model_dump(mode="json")
    report["seconds"] = round(time.perf_counter() - started, 1)
    artifacts.sae_quality.write_text(json.dumps(report, indent=2))
    logger.info("SAE quality report written to %s", artifacts.sae_quality)
    return report


def predictions(classifier: TextClassifier, texts: list[str], *, batch_size: int) -> np.ndarray:
    """Predicted class indices."""
    return classifier.predict_proba(texts, batch_size=batch_size).argmax(axis=1)
