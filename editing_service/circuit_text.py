"""The `editing-service circuit` command's work: read (or rebuild) circuit.json, apply flags and
thresholds, print a summary, write the drawing and the selected graph."""

from __future__ import annotations

from pathlib import Path

from editing_service.artifacts import ArtifactDir
from editing_service.circuit.drawing import draw_svg
from editing_service.circuit.graph import CircuitGraph, read_circuit
from editing_service.circuit.view import check_view_args, flagged_subgraph, select_view, with_flags


def load_view(
    out: str | Path, *, flags: dict[str, str] | None = None, node_threshold: float | None = None,
    edge_threshold: float | None = None, max_nodes: int | None = None, flagged_only: bool = False,
) -> CircuitGraph:
    """The run's circuit.json with `flags` ({node id: state}) laid over and thresholds applied: the same
    graph `GET /v1/projects/{id}/circuit` returns for the same run, flags and query."""
    check_view_args(node_threshold, edge_threshold, max_nodes)
    graph = select_view(with_flags(read_circuit(ArtifactDir(Path(out)).circuit), flags or {}),
                        node_threshold=node_threshold, edge_threshold=edge_threshold, max_nodes=max_nodes)
    return flagged_subgraph(graph) if flagged_only else graph


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def summary(graph: CircuitGraph) -> str:
    """A plain-text summary: size, faithfulness curve, node sets, pruning and the head lens."""
    kinds = {k: sum(n.kind == k for n in graph.nodes) for k in ("feature", "error")}
    lines = [f"circuit of {graph.model} on {graph.spec}: {kinds['feature']} feature nodes, {kinds['error']} error "
             f"nodes, {len(graph.edges)} edges over {len(graph.sites)} sites ({graph.n_examples} examples, "
             f"node scores by {graph.method})"]
    curve = graph.faithfulness
    if curve is not None:
        lines.append(f"faithfulness ({curve.ablation} ablation, {curve.n_examples} examples): "
                     f"F(model) {curve.f_model:.3f}, F(empty) {curve.f_empty:.3f}")
        lines.append(f"{'nodes':>8}{'faithful':>10}{'complete':>10}")
        lines += [f"{p.n_nodes:>8}{_fmt(p.faithfulness):>10}{_fmt(p.completeness):>10}" for p in curve.points]
        lines.append(curve.statement)
    for s in graph.sets:
        lines.append(f"{s.name} ({len(s.node_ids)} nodes): faithfulness {_fmt(s.faithfulness)}, "
                     f"completeness {_fmt(s.completeness)}. {s.statement}")
    if graph.pruning is not None:
        p = graph.pruning
        auroc = "undefined" if p.auroc is None else f"{p.auroc:.3f}"
        lines.append(f"exact pruning (tau {p.tau:g}): kept {len(p.kept)} of {len(p.visited)} nodes, "
                     f"faithfulness {_fmt(p.faithfulness)}, KL {p.kl:.4f}, AUROC of |score| vs kept {auroc}")
    if graph.head_lens is not None:
        lens = graph.head_lens
        lines.append(f"head lens on {lens.split}: {'site':<16}{'probe':>8}{'head':>8}{lens.attribute or 'attr.':>8}")
        lines += [f"{'':<{len(lens.split) + 14}}{r.site:<16}{_fmt(r.probe_accuracy):>8}{_fmt(r.head_accuracy):>8}"
                  f"{_fmt(r.attribute_accuracy):>8}" for r in lens.sites]
    return "\n".join(lines)


def write_drawing(graph: CircuitGraph, path: str | Path, *, title: str | None = None) -> Path:
    path = Path(path)
    path.write_text(draw_svg(graph, title=title))
    return path
