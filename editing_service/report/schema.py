"""The report's typed schema: what the edit step writes as report.json and every reader reads back.

The HTML page, the model card, the CLI, the job summary and the REST API read a report only through
these models (`Report.read(path)`), never by string keys. `SCHEMA_VERSION` changes whenever a field
changes meaning or is removed; a report of another version is refused with a message saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 2
WRONG_VERSION = (
    "{path} holds a report of schema version {got}; this service reads version {expected}: rerun the edit "
    "to rewrite it."
)

RowRole = Literal["reference", "edit", "baseline"]
HEADLINE_METRICS = ("accuracy", "group_balanced_accuracy", "worst_group_accuracy", "protected_attribute_accuracy")
Interval = list[float]  # [low, high] at the report's bootstrap quantiles


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cell(_Model):
    """Accuracy of one (class, group) cell."""

    label: str
    group: str
    count: int
    correct: int
    accuracy: float
    wilson_ci: Interval | None = None
    ci: Interval | None = None


class EmptyCell(_Model):
    label: str
    group: str


class GroupAccuracy(_Model):
    group: str
    count: int
    accuracy: float


class WorstGroup(_Model):
    label: str
    group: str


class Intervals(_Model):
    """Bootstrap intervals of the headline metrics (None where the method gives none)."""

    accuracy: Interval | None = None
    group_balanced_accuracy: Interval | None = None
    worst_group_accuracy: Interval | None = None

    def of(self, metric: str) -> Interval | None:
        """The interval of `metric`, None for metrics without one."""
        return getattr(self, metric, None)


class ClassGaps(_Model):
    """One class against the rest: rates per group and the fairlearn differences."""

    selection_rate: dict[str, float | None]
    true_positive_rate: dict[str, float | None]
    false_positive_rate: dict[str, float | None]
    demographic_parity_difference: float | None
    selection_rate_ratio: float
    equalized_odds_difference: float | None
    equal_opportunity_difference: float | None


class TPRGap(_Model):
    definition: str
    order: list[str] | None
    per_class: dict[str, float | None]
    rms: float | None


class FourFifths(_Model):
    threshold: float
    per_class: dict[str, float]
    min_ratio: float
    violated: bool


class Fairness(_Model):
    groups: list[str]
    aggregation: str
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    equal_opportunity_difference: float | None
    tpr_gap: TPRGap
    four_fifths: FourFifths
    per_class: dict[str, ClassGaps]


class Probe(_Model):
    accuracy: float
    accuracy_std: float
    balanced_accuracy: float
    seconds: float


class Leakage(_Model):
    """Cross-validated probes predicting the protected attribute from what the head reads."""

    n: int
    dim: int
    folds: int
    majority_baseline: float
    chance_balanced_accuracy: float
    probes: dict[str, Probe]
    settings: dict[str, Any]  # the probes' settings, shown as provenance


class Bootstrap(_Model):
    method: str
    n_boot: int
    seed: int
    quantiles: list[float]


class Row(_Model):
    """Every bias and accuracy number of one model on the evaluation split."""

    name: str
    title: str = ""  # the row as a phrase ("SHIFT + retrained head"); the name when empty
    description: str
    role: RowRole = "baseline"
    attribute: str
    label_names: list[str]
    groups: list[str]
    n: int
    accuracy: float
    group_balanced_accuracy: float
    worst_group_accuracy: float
    worst_group: WorstGroup
    intervals: Intervals
    protected_attribute_accuracy: float | None
    protected_attribute_accuracy_rows: float | None
    cells: list[Cell]
    empty_cells: list[EmptyCell]
    min_cell_count: int
    by_group: list[GroupAccuracy]
    by_group_gap: float
    fairness: Fairness
    leakage: Leakage | None
    bootstrap: Bootstrap
    warnings: list[str]

    @property
    def phrase(self) -> str:
        return self.title or self.name

    def metric(self, name: str) -> float | None:
        """A headline number by name (`accuracy`, `group_balanced_accuracy`, ...)."""
        value = getattr(self, name)
        return None if value is None else float(value)


class SkippedRow(_Model):
    """A registered row that was not run in this report, and why."""

    name: str
    title: str
    reason: str


class Versus(_Model):
    shift: float
    baseline: float
    difference: float
    verdict: Literal["better", "level", "worse"]
    intervals_overlap: bool | None


class Comparison(_Model):
    """Findings computed from the rows: which rows the SHIFT row beats and which it does not."""

    shift_row: str | None
    versus: dict[str, dict[str, Versus]]
    shift_beats_baselines: bool | None
    beats: list[str] = Field(default_factory=list, description="rows SHIFT beats on every compared metric")
    does_not_beat: list[str] = Field(default_factory=list)
    findings: list[str]


class Flag(_Model):
    site: str
    feature: int
    label: str | None = None
    who: str | None = None
    why: str | None = None
    source: str = "person"


class FlagPolicy(_Model):
    statement: str
    sources: dict[str, int]
    selection_subset: str | None
    evaluation_subset: str | None
    chosen_on_evaluation_split: bool


class DatasetInfo(BaseModel):
    """Name, subsets by role and fingerprint of the data; other provenance fields are kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    subsets: dict[str, str] = Field(default_factory=dict)
    sha256: str | None = None
    hub_id: str | None = None


class ModelInfo(BaseModel):
    """The classifier the report is about; other provenance fields are kept as given."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    base_model: str | None = None
    edited_model_id: str | None = None


class BudgetPoint(_Model):
    """The top `n` flagged features by attribution, ablated: group-balanced accuracy and SCR score."""

    n: int
    features: list[str]  # "site/feature" ids, strongest first
    accuracy: float  # group-balanced, original head
    score: float | None  # (accuracy - base) / (oracle - base)
    accuracy_retrained: float | None
    score_retrained: float | None


class BudgetCurve(_Model):
    """SAEBench's SCR view of the edit: how much of the gap to the oracle the top N flags close."""

    metric: str
    base: float
    oracle: float | None
    points: list[BudgetPoint]


class Spread(_Model):
    mean: float
    min: float
    max: float
    values: list[float]


class SeedSummary(_Model):
    """Mean and range of every row's headline metrics over repeated runs (SAE training and after)."""

    seeds: list[int]
    rows: dict[str, dict[str, Spread]]  # row name -> metric -> spread
    runs: list[str]  # where each seed's report is, relative to the main run


class Report(_Model):
    """report.json."""

    schema_version: int = SCHEMA_VERSION
    title: str
    created_at: str
    attribute: str
    label_names: list[str]
    dataset: DatasetInfo
    model: ModelInfo
    sae: dict[str, Any] | None = None  # the SAE settings, as provenance
    retrain: dict[str, Any] | None = None  # how heads were retrained, as provenance
    flags: list[Flag]
    flag_policy: FlagPolicy
    rows: list[Row]
    skipped_rows: list[SkippedRow] = Field(default_factory=list)
    comparison: Comparison
    budget_curve: BudgetCurve | None = None
    seeds: SeedSummary | None = None
    edit: dict[str, Any] | None = None  # how the edit was served (served form, agreement, erasure), as provenance
    flagged_circuit: dict[str, Any] | None = None  # the flagged features' part of the circuit graph
    limitations: list[str]
    warnings: list[str]
    seconds: float | None = None
    run_seconds: float | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(WRONG_VERSION.format(path="The document", got=value, expected=SCHEMA_VERSION))
        return value

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2))

    @classmethod
    def read(cls, path: str | Path) -> Report:
        """A report.json, checked against this schema (its version first, with a message saying so)."""
        text = Path(path).read_text()
        got = json.loads(text).get("schema_version", 1)
        if got != SCHEMA_VERSION:
            raise ValueError(WRONG_VERSION.format(path=path, got=got, expected=SCHEMA_VERSION))
        return cls.model_validate_json(text)
