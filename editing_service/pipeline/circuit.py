"""The circuit graph of a run (circuit.json): nodes from the node scores and cards, edges by batched VJPs,
the faithfulness curve, node sets, optional exact pruning and the head lens.

`discover` calls `build_graph` with what it has in memory; `run_circuit` rebuilds circuit.json from an
existing discovery folder (run.json, models/original, saes/, activations/, attribution.json,
features.json) with the run's settings or new ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.circuit import AttributionDocument, NodeScores
from editing_service.circuit.drawing import draw_svg
from editing_service.circuit.edges import compute_edges
from editing_service.circuit.faithfulness import NodeSetEvaluator, faithfulness_curve, set_faithfulness
from editing_service.circuit.graph import (
    METRIC_ID,
    CircuitEdge,
    CircuitGraph,
    CircuitNode,
    Thresholds,
    error_id,
    feature_id,
    read_circuit,
    write_circuit,
)
from editing_service.circuit.head_lens import head_lens
from editing_service.circuit.pruning import exact_pruning
from editing_service.circuit.view import flagged_subgraph, with_flags
from editing_service.data import TextSplit, load_role, load_spec
from editing_service.edit import load_model
from editing_service.features.document import FeaturesDocument
from editing_service.model import Site, TextClassifier
from editing_service.pipeline.ablation_means import run_ablation_values
from editing_service.pipeline.common import ProgressFn, group_attribute, quiet, resolve_device
from editing_service.sae import SAE, load_sae
from editing_service.settings import GraphSettings, RunSettings

logger = logging.getLogger(__name__)

SUGGESTED_SET = "suggested (lexicon)"


@dataclass
class GraphInputs:
    """What the graph is built from: the run's folder, the model, its SAEs in site order, node scores and the
    splits."""

    artifacts: ArtifactDir
    classifier: TextClassifier
    saes: dict[Site, SAE]
    scores: Mapping[str, NodeScores]
    train: TextSplit
    train_cache: ActivationCache
    validate: TextSplit
    validate_cache: ActivationCache
    spec: str
    attribute: str | None
    labels: Mapping[str, str | None]  # node id -> card label
    suggestions: Mapping[str, list[str]]  # node id -> suggestion kinds


def ranked_nodes(scores: Mapping[str, NodeScores], sites: list[str]) -> list[tuple[str, float]]:
    """Every node (features and error nodes of every site) as (id, score), strongest |score| first."""
    nodes = [(error_id(s), float(scores[s].error)) for s in sites]
    for s in sites:
        nodes += [(feature_id(s, i), float(v)) for i, v in enumerate(scores[s].features)]
    return sorted(nodes, key=lambda item: -abs(item[1]))


def graph_features(scores: Mapping[str, NodeScores], sites: list[str], settings: GraphSettings) -> dict[str, list[int]]:
    """The features drawn per site: the strongest `nodes_per_site` with |score| >= node_threshold."""
    chosen = {}
    for s in sites:
        values = np.abs(np.asarray(scores[s].features))
        order = np.argsort(-values, kind="stable")[:settings.nodes_per_site]
        chosen[s] = [int(i) for i in order if values[i] >= settings.node_threshold and values[i] > 0]
    return chosen


def sample_rows(split: TextSplit, n: int, seed: int = 0) -> np.ndarray:
    """Up to n examples, stratified by class, seeded (the same rule as attribution's sample)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(split.labels)
    per_class = max(1, n // len(classes))
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(split.labels == c))[:per_class] for c in classes]))


def build_graph(inputs: GraphInputs, settings: RunSettings, *, progress: ProgressFn = quiet) -> CircuitGraph:
    """The whole circuit.json document."""
    g = settings.graph
    clf, saes = inputs.classifier, inputs.saes
    sites = [s.name for s in saes]
    ranked = ranked_nodes(inputs.scores, sites)
    rank = {node: r for r, (node, _) in enumerate(ranked)}
    score = dict(ranked)
    drawn = graph_features(inputs.scores, sites, g)

    started = time.perf_counter()
    rows = sample_rows(inputs.train, g.n_examples, settings.attribution.seed)
    texts, labels = [inputs.train.texts[i] for i in rows], inputs.train.labels[rows]
    weights = compute_edges(clf, saes, texts, labels, drawn, batch_size=g.batch_size, chunk=g.vjp_chunk,
                            on_progress=lambda f: progress("circuit:edges", f))
    edges = [CircuitEdge(source=s, target=t, weight=w) for (s, t), w in weights.items() if abs(w) >= g.edge_threshold]
    edge_seconds = time.perf_counter() - started

    values = run_ablation_values(inputs.artifacts, saes, g.ablation, inputs.train_cache)
    evaluator = NodeSetEvaluator(clf, saes, texts, labels, values, batch_size=g.batch_size)
    progress("circuit:faithfulness", 0.0)
    curve = faithfulness_curve(evaluator, [n for n, _ in ranked], sizes=g.curve_sizes, target=g.faithful_target)
    sets = []
    suggested = [n for n, kinds in inputs.suggestions.items() if "lexicon" in kinds]
    if suggested:
        sets.append(set_faithfulness(evaluator, SUGGESTED_SET, suggested))
    progress("circuit:faithfulness", 1.0)
    logger.info("Circuit: %d edges in %.0f s; %s", len(edges), edge_seconds, curve.statement)

    pruning, kept = None, {}
    if g.prune:
        prune_rows = sample_rows(inputs.train, g.prune_examples, settings.attribution.seed + 1)
        prune_eval = NodeSetEvaluator(clf, saes, [inputs.train.texts[i] for i in prune_rows],
                                      inputs.train.labels[prune_rows], values, batch_size=g.batch_size)
        start = [n for n, _ in ranked if n in _drawn_ids(drawn, sites)][:g.prune_nodes]
        pruning = exact_pruning(prune_eval, start, score, tau=g.prune_tau,
                                on_progress=lambda f: progress("circuit:pruning", f))
        kept = {n: n in set(pruning.kept) for n in pruning.visited}

    lens = None
    if g.head_lens:
        groups = ({inputs.attribute: inputs.validate.groups[inputs.attribute]}
                  if inputs.attribute and inputs.attribute in inputs.validate.groups else None)
        lens = head_lens(inputs.validate_cache, sites, inputs.validate.labels, split=inputs.validate.name,
                         head=clf.head, groups=groups)

    nodes = [CircuitNode(id=METRIC_ID, kind="metric")]
    for s in sites:
        for i in drawn[s]:
            node = feature_id(s, i)
            nodes.append(CircuitNode(id=node, kind="feature", site=s, feature=i, score=score[node], rank=rank[node],
                                     label=inputs.labels.get(node), suggestions=list(inputs.suggestions.get(node, [])),
                                     kept_by_pruning=kept.get(node)))
        node = error_id(s)
        nodes.append(CircuitNode(id=node, kind="error", site=s, score=score[node], rank=rank[node],
                                 kept_by_pruning=kept.get(node)))
    any_scores = next(iter(inputs.scores.values()))
    return CircuitGraph(
        spec=inputs.spec, model=clf.source.name_or_path, sites=sites, method=any_scores.method, n_examples=len(rows),
        thresholds=Thresholds(node_threshold=g.node_threshold, edge_threshold=g.edge_threshold,
                              max_nodes=g.nodes_per_site + 1),
        nodes=nodes, edges=edges, faithfulness=curve, sets=sets, pruning=pruning, head_lens=lens,
    )


def _drawn_ids(drawn: Mapping[str, list[int]], sites: list[str]) -> set[str]:
    return {feature_id(s, i) for s in sites for i in drawn[s]} | {error_id(s) for s in sites}


def run_graph_settings(out: str | Path, changes: Mapping[str, object]) -> GraphSettings:
    """The run's graph settings (run.json) with `changes`, validated."""
    artifacts = ArtifactDir(Path(out))
    config = artifacts.require(artifacts.run_config)
    current = RunSettings.model_validate_json(config.read_text()).graph
    return GraphSettings.model_validate({**current.model_dump(), **changes})


def run_circuit(out: str | Path, *, graph: GraphSettings | None = None, progress: ProgressFn = quiet) -> CircuitGraph:
    """Rebuild circuit.json of a discovered run in `out` (with `graph` settings, default the run's)."""
    artifacts = ArtifactDir(Path(out))
    for path in (artifacts.run_config, artifacts.attribution, artifacts.features):
        artifacts.require(path)
    settings = RunSettings.model_validate_json(artifacts.run_config.read_text())
    if graph is not None:
        settings = settings.model_copy(update={"graph": graph})
    spec = load_spec(settings.spec)
    classifier = load_model(artifacts.original_model, device=resolve_device(settings.model.device),
                            device_map=settings.model.placement())
    scores = AttributionDocument.read(artifacts.attribution)
    sites = classifier.resolve_sites(list(scores))
    saes = {site: load_sae(artifacts.sae(site.name)).to(classifier.device) for site in sites}
    features = FeaturesDocument.read(artifacts.features)
    labels, suggestions = features.labels(), features.suggestion_kinds()
    inputs = GraphInputs(
        artifacts=artifacts, classifier=classifier, saes=saes, scores=scores, train=load_role(spec, "train"),
        train_cache=ActivationCache.open(artifacts.cache("train")), validate=load_role(spec, "validate"),
        validate_cache=ActivationCache.open(artifacts.cache("validate")), spec=spec.name,
        attribute=group_attribute(spec), labels=labels, suggestions=suggestions,
    )
    document = build_graph(inputs, settings, progress=progress)
    write_circuit(document, artifacts.circuit)
    return document


def flagged_circuit(
    artifacts: ArtifactDir, classifier: TextClassifier, saes: Mapping[str, SAE], flagged: Mapping[str, list[int]],
    train: TextSplit, train_cache: ActivationCache,
) -> dict[str, object] | None:
    """For the report: the flagged features' faithfulness and completeness on the original classifier (the
    run's graph settings) and the drawing of their subgraph; None when the run has no circuit.json."""
    if not artifacts.circuit.is_file():
        return None
    settings = RunSettings.model_validate_json(artifacts.run_config.read_text())
    graph = read_circuit(artifacts.circuit)
    g = settings.graph
    by_site = {site: saes[site.name] for site in classifier.resolve_sites(graph.sites)}
    ids = [feature_id(site, i) for site, indices in flagged.items() for i in indices]
    rows = sample_rows(train, g.n_examples, settings.attribution.seed)
    evaluator = NodeSetEvaluator(classifier, by_site, [train.texts[i] for i in rows], train.labels[rows],
                                 run_ablation_values(artifacts, by_site, g.ablation, train_cache),
                                 batch_size=g.batch_size)
    numbers = set_faithfulness(evaluator, "flagged", ids)
    subgraph = flagged_subgraph(with_flags(graph, {node: "spurious" for node in ids}))
    try:
        svg = draw_svg(subgraph, title="Flagged features and their paths to the decision")
    except FileNotFoundError as err:  # no Graphviz binaries: the numbers still go in the report
        logger.warning("%s", err)
        svg = None
    return {"set": numbers.model_dump(), "n_nodes": len(subgraph.nodes), "n_edges": len(subgraph.edges),
            "svg": svg[svg.index("<svg"):] if svg else None}
