"""Request and response bodies of the REST API (pydantic; every field documented in /docs.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from editing_service.api.params import MAX_INDEX, SITE_PATTERN, JsonDocument, Text
from editing_service.sae.quality import SAEQuality
from editing_service.store.records import EVENT_ACTIONS

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
    features: int = Field(description="features in the current discovery's circuit (0 before discovery)")
    discovery: str | None = Field(None, description="the current discovery's id (null before the first one)")
    discovery_version: int | None = Field(None, description="the current discovery's version (1, 2, ...)")
    upload: Literal["none", "kept", "deleted"] = Field(
        "none", description="whether the project came with an uploaded data file, and whether it is still kept"
    )


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class ProjectList(Page):
    items: list[Project]


class JobCreate(_Body):
    kind: Literal["discover"] = Field(description="edit jobs are created with POST .../edits")
    settings: JsonDocument | None = Field(
        None,
        description="run-settings overrides for this discovery only, merged into the project's (e.g. a larger "
        "sae.d_sae); null: the project's settings",
    )


class Discovery(BaseModel):
    id: str
    version: int
    status: JobStatus = Field(description="follows its job; succeeded once it became current, for good")
    current: bool = Field(description="the discovery whose features are listed and on which new edits are made")
    job_id: str
    settings: dict[str, Any] = Field(description="the run-settings overrides it used")
    sae_digests: dict[str, str] = Field(description="SHA-256 of each site's SAE (filled when it succeeds)")
    flags_carried: list[str] = Field(
        description="flags (feature ids) whose SAE it kept when it became current: they still apply"
    )
    flags_to_review: list[str] = Field(
        description="flags made on an SAE it replaced: they apply to no feature until set again or cleared"
    )
    created_at: datetime
    finished_at: datetime | None
    artifacts_removed: bool = Field(description="its artifacts were removed (failed or cancelled, retention passed)")


class DiscoveryList(BaseModel):
    items: list[Discovery]


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
    discovery_id: str | None = Field(description="the discovery whose SAE it was made on (null: before versioning)")
    current: bool = Field(
        description="true: it applies to the current discovery (same SAE); false: a re-discovery replaced its "
        "SAE, so it needs review (set it again or clear it) and is left out of edits and feature listings"
    )


class FlagList(BaseModel):
    items: list[Flag]


class AuditEntry(BaseModel):
    id: int
    site: str
    feature: int
    action: Literal["set", "clear"]
    state: str | None
    previous_state: str | None
    rationale: str
    reviewer: str
    principal: str
    source: str
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
        None, max_length=10_000, description="features to ablate; null applies the project's current flags (spurious ones)"
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
    discovery_id: str | None = Field(description="the discovery it was made on (null: before versioning)")


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


class Event(BaseModel):
    """A change other than a flag, with the principal that made it."""

    id: int
    action: Literal[EVENT_ACTIONS]  # type: ignore[valid-type]
    target: str = Field(description="the discovery, edit, upload, project, member (a principal's name) or "
                                    "token concerned")
    principal: str
    detail: dict[str, Any]
    at: datetime


class EventList(Page):
    items: list[Event]


class ErrorBody(BaseModel):
    detail: str


class DiscoverySummary(BaseModel):
    """What a project's finished discovery found: the circuit's size per site, the suggestions, SAE quality."""

    version: Literal[1] = 1
    sites: list[str]
    cards_split: str
    seconds: float | None
    circuit_per_site: dict[str, int] = Field(description="circuit features at each site")
    cards: int = Field(description="features with a card")
    suggestions: dict[str, int] = Field(description="suggested features per rule")
    error_scores: dict[str, float | None] = Field(description="node score of each site's SAE error term")
    sae_quality: dict[str, dict[str, SAEQuality]] = Field(description="site -> split (train, validate) -> quality")


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
