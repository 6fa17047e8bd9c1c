"""Drawing a `CircuitGraph` with Graphviz (the `graphviz` package; layout by the `dot` binary).

Nodes sit in one column per site, input side on the left, the decision on the right; error nodes are
boxes, features ellipses; the fill says the flag (spurious red, task-relevant green, suggested amber);
edge width grows with |weight|, colour gives the sign (blue: a negative weight, zeroing the source
lowers the metric through the target, so the source supports the decision; red: positive, it opposes
it). Labels come from the feature cards.
"""

from __future__ import annotations

import shutil

import graphviz

from editing_service.circuit.graph import METRIC_ID, CircuitGraph, CircuitNode

NO_DOT = "Graphviz's `dot` binary is not installed (Debian: apt-get install graphviz); cannot draw the circuit."
FILL = {"spurious": "#f4a6a6", "task_relevant": "#b7e1b0", "suggested": "#fde2a7", None: "#ffffff"}
MAX_PEN = 6.0


def _fill(node: CircuitNode) -> str:
    if node.flag is not None:
        return FILL[node.flag]
    return FILL["suggested"] if node.suggestions else FILL[None]


def _label(node: CircuitNode) -> str:
    if node.kind == "metric":
        return "decision\n(metric)"
    head = f"{node.site}\nerror" if node.kind == "error" else f"{node.site} #{node.feature}"
    text = f"{head}\n{node.score:+.3g}"
    if node.label:
        text += f"\n{node.label[:40]}"
    return text


def to_dot(graph: CircuitGraph, *, title: str | None = None) -> graphviz.Digraph:
    """The graph as a Graphviz Digraph (no layout done yet)."""
    dot = graphviz.Digraph("circuit", graph_attr={"rankdir": "LR", "newrank": "true", "nodesep": "0.15",
                                                  "ranksep": "1.2", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled"},
                           edge_attr={"arrowsize": "0.5"})
    if title:
        dot.attr(label=title, labelloc="t", fontsize="14")
    for site in graph.sites:
        members = [n for n in graph.nodes if n.site == site]
        if not members:
            continue
        with dot.subgraph(name=f"cluster_{site}") as column:
            column.attr(label=site, rank="same", style="dashed", color="#999999")
            for n in members:
                column.node(n.id, _label(n), shape="box" if n.kind == "error" else "ellipse", fillcolor=_fill(n),
                            penwidth="2" if n.kind == "error" else "1")
    if any(n.id == METRIC_ID for n in graph.nodes):
        dot.node(METRIC_ID, _label(graph.node(METRIC_ID)), shape="doubleoctagon", fillcolor="#dde6f7")
    biggest = max((abs(e.weight) for e in graph.edges), default=0.0) or 1.0
    for e in graph.edges:
        width = 0.3 + MAX_PEN * abs(e.weight) / biggest
        dot.edge(e.source, e.target, penwidth=f"{width:.2f}", color="#3b6fb6" if e.weight < 0 else "#c0392b",
                 tooltip=f"{e.source} -> {e.target}: {e.weight:+.4g}")
    return dot


def draw_svg(graph: CircuitGraph, *, title: str | None = None) -> str:
    """The drawing as SVG text (FileNotFoundError when the `dot` binary is missing)."""
    if shutil.which("dot") is None:
        raise FileNotFoundError(NO_DOT)
    return to_dot(graph, title=title).pipe(format="svg", encoding="utf-8")
