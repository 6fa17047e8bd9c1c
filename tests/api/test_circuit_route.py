"""GET /v1/projects/{id}/circuit over real HTTP: the same graph as `editing-service circuit` on the
project's folder with the same flags and thresholds, and clear 4xx answers for bad requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_world import TINY_SETTINGS, spec_for
from http_server import ServerProcess

from editing_service.circuit.graph import METRIC_ID, CircuitGraph
from editing_service.cli import main
from editing_service.client import APIError, EditingClient
from editing_service.store.discoveries import DISCOVERIES_FOLDER


def test_route_returns_the_cli_graph(ana: EditingClient, server: ServerProcess, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = server.root
    project = ana.create_project(name="circuit", model=str(root / "models" / "bert"),
                                 dataset={"inline": spec_for(root)}, settings=TINY_SETTINGS)
    with pytest.raises(APIError) as early:
        ana.circuit(project["id"])
    assert early.value.status == 409 and "no circuit graph" in early.value.detail
    ana.wait(ana.discover(project["id"])["id"], timeout=600, poll=0.5)

    whole = CircuitGraph.model_validate(ana.circuit(project["id"]))
    feature = next(n for n in whole.nodes if n.kind == "feature")
    ana.flag(project["id"], feature.site, feature.feature, state="spurious", rationale="test", reviewer="Ana")
    query = {"node_threshold": abs(feature.score) / 10, "edge_threshold": 1e-6, "max_nodes": 5}
    over_http = CircuitGraph.model_validate(ana.circuit(project["id"], **query))

    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps({"flags": [{"site": feature.site, "feature": feature.feature, "state": "spurious"}]}))
    out = tmp_path / "cli.json"
    discovery = next(d for d in ana.discoveries(project["id"]) if d["current"])
    folder = root / "home" / "projects" / project["id"] / DISCOVERIES_FOLDER / discovery["id"]
    assert main(["circuit", "--out", str(folder), "--flags", str(flags), "--json", str(out),
                 "--node-threshold", str(query["node_threshold"]), "--edge-threshold", "1e-6", "--max-nodes", "5"]) == 0
    assert "faithfulness" in capsys.readouterr().out
    from_cli = CircuitGraph.model_validate_json(out.read_text())
    assert over_http == from_cli
    assert over_http.node(feature.id).flag == "spurious"
    assert any(n.id == METRIC_ID for n in over_http.nodes) and over_http.edges
    per_site: dict[str | None, int] = {}
    for n in over_http.nodes:
        per_site[n.site] = per_site.get(n.site, 0) + 1
        assert n.kind == "metric" or abs(n.score) >= query["node_threshold"]
    assert max(v for k, v in per_site.items() if k is not None) <= 5
    assert all(abs(e.weight) >= 1e-6 for e in over_http.edges)


def test_bad_circuit_queries_are_refused(ana: EditingClient) -> None:
    with pytest.raises(APIError) as missing:
        ana.circuit("nope")
    assert missing.value.status == 404
    for query in ({"node_threshold": -1}, {"max_nodes": 0}, {"edge_threshold": "x"}):
        with pytest.raises(APIError) as bad:
            ana.circuit("nope", **query)
        assert bad.value.status == 422, query
