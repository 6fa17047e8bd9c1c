"""Request and response bodies of the REST API (pydantic; every field documented in /docs.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from editing_service.api.params import MAX_INDEX, SITE_PATTERN, JsonDocument, Text
from editing_service.store.records import AUDIT_ACTIONS

JobKind = Literal["discover", "edit"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FlagState = Literal["spurious", "task_relevant"]
SuggestionKind = Literal["lexicon", "protected_attribute"]

ONE_DATASET_SOURCE = "dataset must give exactly one of `spec` (a shipped spec name) or `inline` (a spec)."


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetRef(_Body):
    """A shipped spec by name, or a whole spec inline (its data files must lie under a data root)."""

    spec: Text | None = Field(None, max_length=200, description="name of a shipped spec, e.g. biasbios_surgeon_nurse")
    inline: JsonDocument | None = Field(None, description="a dataset spec, as its YAML would read")

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetRef:
        if (self.spec is None) == (self.inline is None):
            raise ValueError(ONE_DATASET_SOURCE)
        return self


class ProjectCreate(_Body):
    name: Text = Field(min_length=1, max_length=200)
    model: Text | None = Field(
        None, max_length=4096,
        description="a model folder under one of the allowed model roots (relative: to the service home); null "
        "for the embedded default"
    )
    dataset: DatasetRef
    settings: JsonDocument = Field(
        default_factory=dict,
        description="overrides of the run settings (sae, attribution, circuit, suggestions, edit, sites, ...)",
    )


class Project(BaseModel):
    id: str
    name: str
    model: str | None
    dataset: str
    settings: dict[str, Any]
    created_at: datetime
    features: int = Field(description="features in the discovered circuit (0 before discovery)")


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class ProjectList(Page):
    items: list[Project]


class JobCreate(_Body):
    kind: Literal["discover"] = Field(description="edit jobs are created with POST .../edits")


class Job(BaseModel):
    id: str
    project_id: str
    kind: JobKind
    status: JobStatus
    step: str
    progress: float
    error: str | None
    attempts: int
    worker_id: str | None = Field(description="the worker (one per server process) running or last running it")
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    params: dict[str, Any]


class JobList(BaseModel):
    items: list[Job]


class FeatureSummary(BaseModel):
    id: str
    site: str
    feature: int
    score: float
    rank: int
    label: str | None
    suggestions: list[str]
    flag: FlagState | None
    has_card: bool


class FeatureList(Page):
    items: list[FeatureSummary]


class FeatureCard(FeatureSummary):
    card: dict[str, Any] | None


class FlagRequest(_Body):
    state: FlagState
    rationale: Text = Field(min_length=1, max_length=4000, description="why: shown in the audit log and reports")
    reviewer: Text = Field(min_length=1, max_length=200, description="the person deciding")


class Flag(BaseModel):
    id: str
    site: str
    feature: int
    state: FlagState
    rationale: str
    reviewer: str
    principal: str
    source: str
    updated_at: datetime


class FlagList(BaseModel):
    items: list[Flag]


class AuditEntry(BaseModel):
    """A flag change (site, feature, reviewer and source set) or an event on a project or on access."""

    id: int
    project_id: str | None
    site: str | None
    feature: int | None
    action: Literal[AUDIT_ACTIONS]  # type: ignore[valid-type]
    subject: str | None = Field(description="what an event concerns: an edit id, a member's or a token's id")
    state: str | None
    previous_state: str | None
    rationale: str
    reviewer: str | None
    principal: str
    source: str | None
    at: datetime


class AuditLog(Page):
    items: list[AuditEntry]


class ApplySuggestions(_Body):
    kind: SuggestionKind
    reviewer: Text = Field(min_length=1, max_length=200)
    rationale: Text | None = Field(None, max_length=4000)


class FeatureRef(_Body):
    site: str = Field(pattern=SITE_PATTERN)
    feature: int = Field(ge=0, le=MAX_INDEX)


class EditCreate(_Body):
    features: list[FeatureRef] | None = Field(
        None, description="features to ablate; null applies the project's current flags (spurious ones)"
    )
    reviewer: Text = Field(min_length=1, max_length=200)
    rationale: Text = Field("", max_length=4000, description="recorded with an explicit list of features")


class Edit(BaseModel):
    id: str
    project_id: str
    job_id: str
    status: JobStatus
    flags: list[dict[str, Any]]
    policy: str
    summary: dict[str, Any] | None
    created_at: datetime


class EditList(BaseModel):
    items: list[Edit]


class EditCreated(BaseModel):
    edit: Edit
    job: Job


class PredictRequest(_Body):
    texts: list[str] = Field(min_length=1, description="texts to classify")
    model: Literal["edited", "original"] = "edited"


class PredictResponse(BaseModel):
    model: Literal["edited", "original"]
    classes: list[str]
    labels: list[str]
    probabilities: list[list[float]]


class ErrorBody(BaseModel):
    detail: str


SplitQuality = dict[str, float | int | None]  # fvu, l0, dead_fraction, ... of one SAE on one split's tokens


class Discovery(BaseModel):
    """What a project's finished discovery found: the circuit's size per site, the suggestions, SAE quality."""

    version: Literal[1] = 1
    sites: list[str]
    cards_split: str
    seconds: float | None
    circuit_per_site: dict[str, int] = Field(description="circuit features at each site")
    cards: int = Field(description="features with a card")
    suggestions: dict[str, int] = Field(description="suggested features per rule")
    error_scores: dict[str, float | None] = Field(description="node score of each site's SAE error term")
    sae_quality: dict[str, dict[str, SplitQuality]] = Field(description="site -> split (train, validate) -> quality")


class ExplainRequest(_Body):
    text: Text = Field(min_length=1, max_length=20000, description="the text to classify and explain")


class Prediction(BaseModel):
    label: str
    probabilities: list[float]


class TokenActivations(BaseModel):
    id: str
    site: str
    feature: int
    label: str | None = Field(description="the feature's label from its card, when it has one")
    values: list[float] = Field(description="activation on each token (0 where it does not fire)")


class ExplainResponse(BaseModel):
    """Both models' predictions on one text, and where each ablated feature fires in the original model."""

    classes: list[str]
    tokens: list[str]
    original: Prediction
    edited: Prediction
    features: list[TokenActivations] = Field(description="the edit's ablated features, those that fire first")
