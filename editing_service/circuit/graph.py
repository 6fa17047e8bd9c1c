"""`circuit.json`: the circuit as a typed graph that the pipeline writes and the CLI, the API and the UI read.

Node ids are shared with `features.json` and the report: a feature node is `"<site>/<feature>"` (the
same id as the feature's card), the error node of a site is `"<site>/error"`, and the decision is the
single node `"metric"`. Edges run from an upstream node to a downstream node (or to the metric) with
the signed indirect effect of zeroing the upstream node through the downstream one (Marks et al. 2024).
Adding a field is allowed (schema version unchanged while old documents still validate); renaming or
removing one bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from editing_service.features.flags import FlagState

SCHEMA_VERSION = 1
METRIC_ID = "metric"
ERROR = "error"

NodeKind = Literal["feature", "error", "metric"]
Ablation = Literal["mean", "zero"]

NO_CIRCUIT = "{path} does not exist: run discover (or `editing-service circuit --compute`) first."
BAD_CIRCUIT = "{path} is not a valid circuit.json (schema version {version}): {problem}"


def feature_id(site: str, feature: int) -> str:
    return f"{site}/{feature}"


def error_id(site: str) -> str:
    return f"{site}/{ERROR}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CircuitNode(_Model):
    """A feature, a site's error term, or the decision (the metric)."""

    id: str = Field(description="'<site>/<feature>', '<site>/error' or 'metric'")
    kind: NodeKind
    site: str | None = Field(None, description="None for the metric")
    feature: int | None = Field(None, description="the feature index, for kind 'feature'")
    score: float = Field(0.0, description="indirect effect toward zero on the metric (signed; 0 for the metric)")
    rank: int | None = Field(None, description="0 = strongest |score| among all nodes (features and errors)")
    label: str | None = Field(None, description="the feature card's label")
    flag: FlagState | None = Field(None, description="the reviewer's flag, when there is one")
    suggestions: list[str] = Field(default_factory=list, description="suggestion kinds (lexicon, protected_attribute)")
    kept_by_pruning: bool | None = Field(None, description="exact pruning's verdict, when it ran on this node")


class CircuitEdge(_Model):
    """IE(source -> target): effect of zeroing `source` on the metric through `target` (signed)."""

    source: str
    target: str
    weight: float


class Thresholds(_Model):
    """What selected the nodes and edges shown: |score| >= node_threshold (best `max_nodes` per site),
    |weight| >= edge_threshold."""

    node_threshold: float = Field(0.0, ge=0)
    edge_threshold: float = Field(0.0, ge=0)
    max_nodes: int | None = Field(None, ge=1, description="nodes kept per site (strongest first)")


class CurvePoint(_Model):
    """Faithfulness and completeness of the circuit of the `n_nodes` strongest nodes."""

    n_nodes: int
    f_circuit: float = Field(description="F(C): mean metric with every node outside C ablated")
    f_complement: float = Field(description="F(M \\ C): mean metric with the nodes of C ablated")
    faithfulness: float | None = Field(description="(F(C) - F(empty)) / (F(M) - F(empty)); 1 = all behaviour; "
                                       "None when F(M) = F(empty)")
    completeness: float | None = Field(description="(F(M \\ C) - F(empty)) / (F(M) - F(empty)); 0 = nothing "
                                       "left outside C")


class FaithfulnessCurve(_Model):
    """Faithfulness and completeness over circuit size (nodes ranked by |score|, error nodes counted)."""

    ablation: Ablation
    n_examples: int
    f_model: float = Field(description="F(M): mean metric of the model")
    f_empty: float = Field(description="F(empty): mean metric with every node ablated")
    points: list[CurvePoint]
    target: float = 0.8
    smallest_faithful: int | None = Field(None, description="fewest nodes reaching `target` (None: none does)")
    statement: str = Field(description="plain words: is the circuit faithful")


class SetFaithfulness(_Model):
    """The same two numbers for a named node set (the flagged features, the suggested ones)."""

    name: str
    node_ids: list[str]
    f_set: float
    f_complement: float
    faithfulness: float | None
    completeness: float | None = Field(description="ablating only this set leaves this fraction of the behaviour")
    statement: str


class Pruning(_Model):
    """ACDC-style exact pruning: visit nodes last site first, remove a node when its exact removal
    (ablation) raises KL(model || circuit) by less than `tau`."""

    tau: float
    ablation: Ablation
    n_examples: int
    visited: list[str]
    kept: list[str]
    faithfulness: float | None = Field(description="faithfulness of the pruned circuit")
    kl: float = Field(description="KL(model || pruned circuit), mean over examples")
    auroc: float | None = Field(None, description="|attribution score| as a predictor of 'kept' (None: one class)")


class HeadLensSite(_Model):
    """How readable the decision and the protected attribute are at one site (pooled activation)."""

    site: str
    probe_accuracy: float | None = Field(description="a fresh linear probe for the label (cross-validated)")
    head_accuracy: float | None = Field(None, description="the original head on this site (None: shapes differ)")
    attribute_accuracy: float | None = Field(None, description="a linear probe for the protected attribute")


class HeadLens(_Model):
    split: str
    attribute: str | None = None
    sites: list[HeadLensSite]


class CircuitGraph(_Model):
    """The whole artifact: nodes, edges, thresholds, faithfulness, pruning and the head lens."""

    schema_version: Literal[1] = SCHEMA_VERSION
    spec: str
    model: str
    sites: list[str] = Field(description="site names, input side first")
    metric: str = Field("true-class logit (signed logit difference for two classes)")
    method: str = Field(description="how node scores were computed (attrib, ig)")
    n_examples: int = Field(description="training examples the edges were averaged over")
    thresholds: Thresholds
    nodes: list[CircuitNode]
    edges: list[CircuitEdge]
    faithfulness: FaithfulnessCurve | None = None
    sets: list[SetFaithfulness] = Field(default_factory=list)
    pruning: Pruning | None = None
    head_lens: HeadLens | None = None

    def node(self, node_id: str) -> CircuitNode:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"The circuit has no node {node_id!r}.")


def write_circuit(graph: CircuitGraph, path: str | Path) -> None:
    Path(path).write_text(graph.model_dump_json(indent=1))


def read_circuit(path: str | Path) -> CircuitGraph:
    """Read and validate a circuit.json (FileNotFoundError or ValueError naming the problem)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(NO_CIRCUIT.format(path=path))
    try:
        return CircuitGraph.model_validate_json(path.read_text())
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ValueError(BAD_CIRCUIT.format(path=path, version=SCHEMA_VERSION,
                                            problem=f"{where}: {first['msg']}")) from None
