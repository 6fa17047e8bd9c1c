"""Views of circuit.json and its Graphviz drawing: thresholds, flags, the flagged subgraph, and an SVG
that holds every node (needs the Graphviz binaries, which .ci/run installs)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from editing_service.circuit.drawing import draw_svg
from editing_service.circuit.graph import CircuitEdge, CircuitGraph, CircuitNode, Thresholds, write_circuit
from editing_service.circuit.view import BAD_MAX_NODES, flagged_subgraph, select_view, with_flags
from editing_service.cli import main


def _graph() -> CircuitGraph:
    nodes = [CircuitNode(id="metric", kind="metric")]
    for s, site in enumerate(["blocks.0.out", "blocks.1.out"]):
        for i in range(4):
            nodes.append(CircuitNode(id=f"{site}/{i}", kind="feature", site=site, feature=i,
                                     score=(i + 1) * (0.1 if s else -0.01), label=f"word {i} <&>"))
        nodes.append(CircuitNode(id=f"{site}/error", kind="error", site=site, score=0.05))
    edges = [CircuitEdge(source=f"blocks.0.out/{i}", target=f"blocks.1.out/{j}", weight=0.01 * (i - j))
             for i in range(4) for j in range(4)]
    edges += [CircuitEdge(source=f"blocks.1.out/{j}", target="metric", weight=-0.1 * (j + 1)) for j in range(4)]
    edges.append(CircuitEdge(source="blocks.1.out/error", target="metric", weight=0.05))
    return CircuitGraph(spec="s", model="m", sites=["blocks.0.out", "blocks.1.out"], method="attrib", n_examples=4,
                        thresholds=Thresholds(), nodes=nodes, edges=edges)


def test_select_view_applies_thresholds_per_site() -> None:
    view = select_view(_graph(), node_threshold=0.03, edge_threshold=0.015, max_nodes=2)
    ids = {n.id for n in view.nodes}
    assert ids == {"metric", "blocks.0.out/3", "blocks.0.out/error", "blocks.1.out/3", "blocks.1.out/2"}
    assert all(e.source in ids and e.target in ids and abs(e.weight) >= 0.015 for e in view.edges)
    assert view.thresholds == Thresholds(node_threshold=0.03, edge_threshold=0.015, max_nodes=2)
    with pytest.raises(ValueError) as err:
        select_view(_graph(), max_nodes=0)
    assert str(err.value) == BAD_MAX_NODES.format(value=0)


def test_flagged_subgraph_follows_paths_to_the_decision() -> None:
    graph = with_flags(_graph(), {"blocks.0.out/0": "spurious", "blocks.1.out/1": "task_relevant"})
    sub = flagged_subgraph(graph, paths_per_node=2)
    # blocks.0.out/0's two strongest edges go to blocks.1.out/3 and /2, and each of those to the metric
    assert {n.id for n in sub.nodes} == {"blocks.0.out/0", "blocks.1.out/3", "blocks.1.out/2", "metric"}
    assert {(e.source, e.target) for e in sub.edges} == {
        ("blocks.0.out/0", "blocks.1.out/3"), ("blocks.0.out/0", "blocks.1.out/2"),
        ("blocks.1.out/3", "metric"), ("blocks.1.out/2", "metric")}
    assert flagged_subgraph(_graph()).nodes == []


def _svg_node_titles(svg: str) -> set[str]:
    return set(re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]*)</title>', svg))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz binaries not installed (.ci/run installs them)")
def test_the_drawing_holds_every_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = with_flags(_graph(), {"blocks.0.out/0": "spurious"})
    svg = draw_svg(graph, title="t")
    assert _svg_node_titles(svg) == {n.id for n in graph.nodes}
    assert "word 0 &lt;&amp;&gt;" in svg  # card labels are escaped

    write_circuit(graph, tmp_path / "circuit.json")
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  - {site: blocks.0.out, feature: 0, state: spurious}\n")
    drawing = tmp_path / "flagged.svg"
    assert main(["circuit", "--out", str(tmp_path), "--flags", str(flags), "--flagged", "--svg", str(drawing)]) == 0
    sub = flagged_subgraph(graph)
    assert _svg_node_titles(drawing.read_text()) == {n.id for n in sub.nodes} and len(sub.nodes) >= 3
    assert "drawing written" in capsys.readouterr().out
