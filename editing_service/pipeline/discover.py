"""The `discover` step: caches, head, SAEs, attribution, the circuit, feature cards and suggestions.

Writes into the artifact directory: activations/{train,validate}, models/original, saes/ (with
quality.json), attribution.json, features.json (circuit, cards, suggestions), circuit.json (the graph:
nodes, edges, faithfulness, head lens) and run.json.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.circuit import (
    AttributionDocument,
    NodeScores,
    attribution_patching,
    integrated_gradients,
    select_circuit,
)
from editing_service.circuit.graph import write_circuit
from editing_service.circuit.sample import stratified_sample
from editing_service.data import TextSplit
from editing_service.edit import save_model
from editing_service.features import (
    TokenVocab,
    attach_suggestions,
    build_feature_cards,
    collect_feature_activations,
    suggest_flags,
)
from editing_service.features.document import (
    AttributionRecord,
    CircuitFeature,
    FeaturesDocument,
)
from editing_service.model import Site, TextClassifier
from editing_service.model.memory import forward_batch_size
from editing_service.pipeline.circuit import GraphInputs, build_graph
from editing_service.pipeline.common import (
    ProgressFn,
    cache_role,
    discovery_sites,
    group_attribute,
    load_inputs,
    quiet,
)
from editing_service.pipeline.original_head import fit_original_head
from editing_service.pipeline.saes import train_site_saes
from editing_service.pipeline.training_data import training_activations
from editing_service.report.sae_quality import SAEQualityReport, SiteQuality
from editing_service.sae import SAE, sae_quality
from editing_service.settings import AttributionSettings, RunSettings

logger = logging.getLogger(__name__)


QUALITY_TOKENS = 16384  # tokens per split for the quality summary of a run (`saes` measures every token)
CARDS_PER_SITE = 100  # cards for the strongest features of each site; suggestions cover the whole circuit


def token_sample(cache: ActivationCache, site: str, n: int = QUALITY_TOKENS) -> np.ndarray:
    """A seeded random sample of one site's cached tokens, as float32 [n, d]."""
    rows = np.sort(np.random.default_rng(0).choice(cache.n_tokens, size=min(n, cache.n_tokens), replace=False))
    return cache.read(site, rows)


def attribution_sample(split: TextSplit, settings: AttributionSettings) -> np.ndarray:
    """Row indices of the examples attribution runs on: up to n_examples, stratified by class, seeded."""
    return stratified_sample(split.labels, n_examples=settings.n_examples, seed=settings.seed)


def node_scores(
    classifier: TextClassifier, saes: dict[Site, SAE], split: TextSplit, settings: AttributionSettings,
    progress: ProgressFn,
) -> dict[str, NodeScores]:
    rows = attribution_sample(split, settings)
    texts, labels = [split.texts[i] for i in rows], split.labels[rows]
    report = lambda f: progress("attribution", f)  # noqa: E731
    if settings.method == "ig":
        return integrated_gradients(classifier, saes, texts, labels, steps=settings.ig_steps,
                                    batch_size=settings.batch_size, on_progress=report)
    return attribution_patching(classifier, saes, texts, labels, batch_size=settings.batch_size,
                                on_progress=report)


def class_logit_effects(
    classifier: TextClassifier, saes: dict[Site, SAE], split: TextSplit, settings: AttributionSettings,
    features: list[tuple[str, int]], *, n_examples: int = 64,
) -> dict[tuple[str, int], list[float]]:
    """Each circuit feature's effect (toward zero) on every class logit, by attribution patching on a
    small stratified sample: one extra forward and backward per class and batch."""
    rows = attribution_sample(split, settings.model_copy(update={"n_examples": n_examples}))
    texts, labels = [split.texts[i] for i in rows], split.labels[rows]
    per_class = [
        attribution_patching(classifier, saes, texts, labels, batch_size=settings.batch_size,
                             metric=lambda logits, _y, c=c: logits[:, c])
        for c in range(len(classifier.classes))
    ]
    return {(site, f): [float(scores[site].features[f]) for scores in per_class] for site, f in features}


def run_discover(settings: RunSettings, out: str | Path, *, progress: ProgressFn = quiet,
                 reuse_caches: bool = False) -> FeaturesDocument:
    """Run discovery and return the features document (also written to features.json).

    With `reuse_caches`, activation caches already in `out` for the same subsets and sites are kept."""
    started = time.perf_counter()
    artifacts = ArtifactDir(Path(out))
    artifacts.root.mkdir(parents=True, exist_ok=True)
    artifacts.run_config.write_text(settings.model_dump_json(indent=2))
    spec, classifier = load_inputs(settings.spec, settings.model)
    sites = discovery_sites(classifier, settings.sites, settings.edit.baselines)
    batch = forward_batch_size(settings.model.batch_size, classifier, len(sites))
    data = training_activations(classifier, spec, sites=sites, artifacts=artifacts, settings=settings,
                                batch_size=batch, seed=settings.sae.seed, progress=progress, reuse=reuse_caches)
    train, train_cache = data.split, data.cache
    validate, validate_cache = cache_role(classifier, spec, "validate", sites=sites, artifacts=artifacts,
                                          dtype=settings.cache_dtype, batch_size=batch, progress=progress,
                                          reuse=reuse_caches)
    head = fit_original_head(classifier, train, train_cache, spec=spec.name, C=settings.edit.head_C,
                             validate=validate, validate_cache=validate_cache, attribute=group_attribute(spec))
    save_model(classifier, artifacts.original_model, provenance=head.model_dump())
    by_name = train_site_saes(data, sites, settings.sae, device=classifier.device, artifacts=artifacts,
                              model_name=classifier.source.name_or_path, progress=progress)
    saes = {site: by_name[site.name] for site in sites}
    SAEQualityReport(
        sites={site.name: SiteQuality(train=sae_quality(sae, token_sample(train_cache, site.name)),
                                      validate=sae_quality(sae, token_sample(validate_cache, site.name)))
               for site, sae in saes.items()},
        tokens_per_split=QUALITY_TOKENS, training_data=data.describe(),
    ).write(artifacts.sae_quality)

    scores = node_scores(classifier, saes, train, settings.attribution, progress)
    AttributionDocument.write(artifacts.attribution, scores)
    circuit = select_circuit(scores, top_k=settings.circuit.top_k, threshold=settings.circuit.threshold,
                             per_site=settings.circuit.per_site)
    pairs = [(c.site, c.feature) for c in circuit]
    progress("cards", 0.0)
    vocab = TokenVocab.from_cache(validate_cache, classifier.tokenizer)
    activations = collect_feature_activations(saes=by_name, cache=validate_cache, features=pairs)
    shown_per_site: Counter[str] = Counter()
    shown = []
    for c in circuit:  # strongest first
        if shown_per_site[c.site] < CARDS_PER_SITE:
            shown.append((c.site, c.feature))
            shown_per_site[c.site] += 1
    effects = class_logit_effects(classifier, saes, train, settings.attribution, shown)
    cards = build_feature_cards(features=shown, saes=by_name, cache=validate_cache, split=validate,
                                vocab=vocab, scores=scores, class_effects=effects, activations=activations)
    attribute = group_attribute(spec)
    suggestions = suggest_flags(
        saes=by_name, cache=validate_cache, split=validate, candidates=pairs, vocab=vocab,
        lexicon=settings.suggestions.lexicon, lexicon_threshold=settings.suggestions.lexicon_threshold,
        min_active_tokens=settings.suggestions.min_active_tokens,
        attributes=[attribute] if attribute else [], attribute_threshold=settings.suggestions.attribute_threshold,
        max_firing_rate=settings.suggestions.max_firing_rate, activations=activations,
    )
    attach_suggestions(cards, suggestions)
    progress("cards", 1.0)
    document = FeaturesDocument(
        spec=spec.name, model=classifier.source.name_or_path, sites=[s.name for s in sites], cards_split=validate.name,
        attribution=AttributionRecord(**settings.attribution.model_dump(), train_subset=train.name,
                                      error_scores={name: s.error for name, s in scores.items()}),
        circuit=[CircuitFeature(id=c.id, site=c.site, feature=c.feature, score=c.score, rank=c.rank) for c in circuit],
        suggestions=suggestions, cards=cards,
        seconds=round(time.perf_counter() - started, 1),
    )
    document.write(artifacts.features)
    if settings.graph.build:
        labels, kinds = document.labels(), document.suggestion_kinds()
        graph = build_graph(GraphInputs(
            artifacts=artifacts, classifier=classifier, saes=saes, scores=scores, train=train, train_cache=train_cache,
            validate=validate, validate_cache=validate_cache, spec=spec.name, attribute=attribute, labels=labels,
            suggestions=kinds,
        ), settings, progress=progress)
        write_circuit(graph, artifacts.circuit)
    else:
        artifacts.circuit.unlink(missing_ok=True)  # a graph of an earlier discovery would describe other SAEs
    logger.info("Discovery: %d circuit features, %d suggestions (%.0f s)", len(circuit), len(suggestions),
                document.seconds)
    return document
