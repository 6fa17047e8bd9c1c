"""Views of a `CircuitGraph`: the thresholded subgraph the API and the CLI return, reviewers' flags laid
over the nodes, and the subgraph of the flagged features with their paths to the decision."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from editing_service.circuit.graph import METRIC_ID, CircuitGraph, Thresholds
from editing_service.features.flags import FlagState

BAD_THRESHOLD = "{name} must be >= 0, got {value}."
BAD_MAX_NODES = "max_nodes must be at least 1, got {value}."


def check_view_args(node_threshold: float | None, edge_threshold: float | None, max_nodes: int | None) -> None:
    """Raise ValueError naming the first bad argument (checked before any work)."""
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if value is not None and not value >= 0:
            raise ValueError(BAD_THRESHOLD.format(name=name, value=value))
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(BAD_MAX_NODES.format(value=max_nodes))


def select_view(
    graph: CircuitGraph,
    *,
    node_threshold: float | None = None,
    edge_threshold: float | None = None,
    max_nodes: int | None = None,
) -> CircuitGraph:
    """The nodes with |score| >= node_threshold (the strongest `max_nodes` per site), the metric, and the
    edges between them with |weight| >= edge_threshold. Unset arguments keep the graph's own thresholds."""
    check_view_args(node_threshold, edge_threshold, max_nodes)
    own = graph.thresholds
    thresholds = Thresholds(
        node_threshold=max(own.node_threshold, node_threshold or 0.0),
        edge_threshold=max(own.edge_threshold, edge_threshold or 0.0),
        max_nodes=min(v for v in (own.max_nodes, max_nodes) if v is not None)
        if (own.max_nodes or max_nodes) else None,
    )
    per_site: dict[str | None, int] = defaultdict(int)
    kept_ids: set[str] = set()
    for n in sorted(graph.nodes, key=lambda n: -abs(n.score)):
        if n.id == METRIC_ID:
            kept_ids.add(n.id)
            continue
        if abs(n.score) < thresholds.node_threshold:
            continue
        if thresholds.max_nodes is not None and per_site[n.site] >= thresholds.max_nodes:
            continue
        per_site[n.site] += 1
        kept_ids.add(n.id)
    nodes = [n for n in graph.nodes if n.id in kept_ids]
    edges = [e for e in graph.edges if e.source in kept_ids and e.target in kept_ids
             and abs(e.weight) >= thresholds.edge_threshold]
    return graph.model_copy(update={"nodes": nodes, "edges": edges, "thresholds": thresholds})


def with_flags(graph: CircuitGraph, flags: Mapping[str, FlagState]) -> CircuitGraph:
    """The graph with each node's flag set from `flags` ({node id: state}; absent ids: no flag)."""
    nodes = [n.model_copy(update={"flag": flags.get(n.id)}) for n in graph.nodes]
    return graph.model_copy(update={"nodes": nodes})


def flagged_subgraph(graph: CircuitGraph, *, paths_per_node: int = 3) -> CircuitGraph:
    """The spurious-flagged features and their paths to the decision: from each flagged node, follow its
    `paths_per_node` strongest outgoing edges (by |weight|) downstream until the metric."""
    outgoing = defaultdict(list)
    for e in graph.edges:
        outgoing[e.source].append(e)
    for source in outgoing:
        outgoing[source].sort(key=lambda e: -abs(e.weight))
    kept_ids = {n.id for n in graph.nodes if n.flag == "spurious"}
    edges = []
    frontier = list(kept_ids)
    seen = set(frontier)
    while frontier:
        source = frontier.pop()
        for e in outgoing[source][:paths_per_node]:
            edges.append(e)
            kept_ids.add(e.target)
            if e.target not in seen:
                seen.add(e.target)
                frontier.append(e.target)
    if kept_ids:
        kept_ids.add(METRIC_ID)
    nodes = [n for n in graph.nodes if n.id in kept_ids]
    return graph.model_copy(update={"nodes": nodes, "edges": edges})
