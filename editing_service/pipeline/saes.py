"""The `saes` step: activation caches, one SAE per site, and the SAEs' quality report."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from editing_service.artifacts import ArtifactDir
from editing_service.model import Site
from editing_service.model.memory import forward_batch_size
from editing_service.pipeline.common import (
    ProgressFn,
    cache_role,
    group_attribute,
    load_inputs,
    quiet,
)
from editing_service.pipeline.original_head import fit_original_head
from editing_service.pipeline.training_data import TrainingActivations, training_activations
from editing_service.report.sae_quality import SAEQualityReport, sae_quality_report
from editing_service.sae import SAE, SAETrainer, fit_together, save_sae
from editing_service.settings import SAERunSettings, SAESettings

logger = logging.getLogger(__name__)

def train_site_saes(
    data: TrainingActivations,
    sites: list[Site],
    settings: SAESettings,
    *,
    device: torch.device,
    artifacts: ArtifactDir,
    model_name: str,
    progress: ProgressFn = quiet,
) -> dict[str, SAE]:
    """Train one SAE per site and save each in the SAELens layout: from the training cache one site after
    the other, or in stream mode all sites in step from one stream (`n_epochs` forward passes in all)."""
    trainers = {site.name: SAETrainer(**settings.trainer_kwargs(), device=device, hook_name=site.name,
                                      model_name=model_name) for site in sites}
    streams = data.streams(sites)
    if streams is None:
        for i, site in enumerate(sites):
            trainers[site.name].fit(data.cache.site(site.name),
                                    progress=lambda f, i=i: progress("saes", (i + f) / len(sites)))
    else:
        first = sites[0].name
        fit_together([
            trainers[site.name].fit_steps(data.cache.site(site.name), stream=streams[site.name],
                                          progress=(lambda f: progress("saes", f)) if site.name == first else None)
            for site in sites
        ])
    for site in sites:
        save_sae(trainers[site.name].sae_, artifacts.sae(site.name))
    progress("saes", 1.0)
    return {site.name: trainers[site.name].sae_ for site in sites}


def run_saes(settings: SAERunSettings, out: str | Path, *, progress: ProgressFn = quiet) -> SAEQualityReport:
    """The `saes` command: cache train and validate, fit the head, train SAEs, write the quality report."""
    started = time.perf_counter()
    artifacts = ArtifactDir(Path(out))
    artifacts.root.mkdir(parents=True, exist_ok=True)
    spec, classifier = load_inputs(settings.spec, settings.model)
    sites = classifier.resolve_sites(settings.sites)
    batch = forward_batch_size(settings.model.batch_size, classifier, len(sites))
    data = training_activations(classifier, spec, sites=sites, artifacts=artifacts, settings=settings,
                                batch_size=batch, seed=settings.sae.seed, progress=progress)
    train_cache = data.cache
    validate, validate_cache = cache_role(classifier, spec, "validate", sites=sites, artifacts=artifacts,
                                          dtype=settings.cache_dtype, batch_size=batch, progress=progress)
    fit_original_head(classifier, data.split, train_cache, spec=spec.name, C="validate", validate=validate,
                      validate_cache=validate_cache, attribute=group_attribute(spec))
    saes = train_site_saes(data, sites, settings.sae, device=classifier.device, artifacts=artifacts,
                           model_name=classifier.source.name_or_path, progress=progress)
    report = sae_quality_report(
        classifier, {site: saes[site.name] for site in sites}, train_cache=train_cache,
        validate=validate, validate_cache=validate_cache, attribute=group_attribute(spec),
        batch_size=batch, splice_check=settings.splice_check, progress=progress,
    )
    report = report.model_copy(update={"training_data": data.describe(), "settings": settings.model_dump(mode="json"),
                                       "seconds": round(time.perf_counter() - started, 1)})
    report.write(artifacts.sae_quality)
    logger.info("SAE quality report written to %s", artifacts.sae_quality)
    return report
