"""The browser tests' world: the tiny API world, with markup-shaped payloads where a hostile dataset,
model or user would put them (a dataset text and the tokenizer's vocabulary, a feature label, a
rationale, a reviewer name, a project name), and a circuit.json for the discovered project."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from api_world import make_world
from factories import WORDS, make_model_folder, make_tokenizer
from http_server import TOKENS

from editing_service.artifacts import ArtifactDir
from editing_service.circuit.graph import (
    METRIC_ID,
    CircuitEdge,
    CircuitGraph,
    CircuitNode,
    Thresholds,
    error_id,
)

# Each sets window.__xss if it ever runs; no spaces, so a whitespace tokenizer keeps each one whole.
SCRIPT = "<script>window.__xss='script'</script>"
IMG = "\"><img/src=x/onerror=window.__xss='img'>"
PAYLOADS = (SCRIPT, IMG)
PROJECT_NAME = "bios " + IMG
VIEWER, VIEWER_TOKEN = "vic", "token-vic"  # a viewer member of the discovered project


@dataclass
class Discovered:
    """The session's discovered project: its id and artifact folder."""

    id: str
    folder: Path


def sign_in(tab: object, token: str = TOKENS["ana"], reviewer: str = "Ana") -> None:
    """Sign in on the workbench's sign-in page and wait for the projects page."""
    tab.fill("#token", token)
    tab.fill("#reviewer", reviewer)
    tab.click("button[type=submit]")
    tab.wait_for_selector("main h1:text-is('Projects')")


def make_workbench_world(root: Path) -> Path:
    """models/bert (a tokenizer whose vocabulary holds the payloads as tokens) and data/bios.csv (a
    payload in every third text)."""
    make_world(root)
    tokenizer = make_tokenizer([*WORDS, *PAYLOADS], split_punctuation=False)
    make_model_folder(root / "models", "bert", tokenizer=tokenizer)  # replaces the world's bert
    table = pd.read_csv(root / "data" / "bios.csv")
    table.loc[::3, "text"] = table.loc[::3, "text"] + " " + [PAYLOADS[i % 2] for i in range(len(table.loc[::3]))]
    table.to_csv(root / "data" / "bios.csv", index=False)
    return root


def ensure_circuit(project_dir: Path) -> CircuitGraph:
    """The project's circuit.json; when the discovery did not write one, one built from its features.json:
    the discovered nodes (scores, labels, suggestions), each site's error node, and edges from every
    node to the nodes of the next site and to the metric, weighted by the product of their scores.
    The weights only give the page a graph to draw; nothing here is a measured effect."""
    artifacts = ArtifactDir(project_dir)
    path = artifacts.circuit
    if path.is_file():
        return CircuitGraph.model_validate_json(path.read_text())
    document = json.loads(artifacts.features.read_text())
    labels = {c["id"]: c["label"] for c in document["cards"]}
    suggested: dict[str, list[str]] = {}
    for s in document["suggestions"]:
        suggested.setdefault(s["id"], []).append(s["kind"])
    sites = document["sites"]
    nodes = [CircuitNode(id=n["id"], kind="feature", site=n["site"], feature=n["feature"], score=n["score"],
                         rank=n["rank"], label=labels.get(n["id"]), suggestions=suggested.get(n["id"], []))
             for n in document["circuit"]]
    errors = document["attribution"]["error_scores"]
    nodes += [CircuitNode(id=error_id(site), kind="error", site=site, score=errors.get(site) or 0.0) for site in sites]
    nodes.append(CircuitNode(id=METRIC_ID, kind="metric"))
    by_site = {site: [n for n in nodes if n.site == site] for site in sites}
    edges = [CircuitEdge(source=u.id, target=d.id, weight=u.score * d.score)
             for upstream, downstream in zip(sites, sites[1:], strict=False)
             for u in by_site[upstream] for d in by_site[downstream]]
    edges += [CircuitEdge(source=n.id, target=METRIC_ID, weight=n.score) for n in by_site[sites[-1]]]
    graph = CircuitGraph(spec=document["spec"], model=document["model"], sites=sites, method="attrib",
                         n_examples=document["attribution"].get("n_examples", 0), thresholds=Thresholds(),
                         nodes=nodes, edges=edges)
    path.write_text(graph.model_dump_json())
    return graph
