"""features.json: what discovery writes and the review (CLI, API, workbench), automatic flags and the job store read.

A typed contract with a schema version. Documents written before the version field existed are version 1, so
discoveries already on disk or in a store keep loading.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from editing_service.features.card import FeatureCard
from editing_service.features.suggest import Suggestion, SuggestionKind

FEATURES_SCHEMA_VERSION = 1


class _Record(BaseModel):
    # json.dumps wrote NaN as NaN; keep reading and writing it that way.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class CircuitFeature(_Record):
    """One feature of the discovered circuit: its node score and rank."""

    id: str  # "<site>/<feature>"
    site: str
    feature: int
    score: float
    rank: int


class SuggestionRecord(_Record):
    """A stored flag suggestion (`Suggestion`, with its id)."""

    id: str
    site: str
    feature: int
    kind: SuggestionKind
    score: float
    evidence: dict[str, Any]
    reason: str

    @classmethod
    def of(cls, suggestion: Suggestion) -> SuggestionRecord:
        return cls.model_validate(suggestion.to_dict())

    def suggestion(self) -> Suggestion:
        return Suggestion(**self.model_dump(exclude={"id"}))


class AttributionRecord(_Record):
    """How the node scores were computed (the run's attribution settings), on which subset, and each site's
    error-node score."""

    method: Literal["attrib", "ig"]
    n_examples: int
    batch_size: int
    ig_steps: int
    seed: int
    train_subset: str
    error_scores: dict[str, float]


class FeaturesDocument(_Record):
    """A discovery's circuit, its feature cards and the flag suggestions."""

    schema_version: Literal[1] = FEATURES_SCHEMA_VERSION
    spec: str
    model: str
    sites: list[str]
    cards_split: str  # the split the cards and suggestions were measured on
    attribution: AttributionRecord
    circuit: list[CircuitFeature]  # strongest first
    suggestions: list[SuggestionRecord]
    cards: list[FeatureCard]
    seconds: float | None = None

    @classmethod
    def read(cls, path: Path) -> FeaturesDocument:
        return cls.model_validate_json(path.read_text())

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json())

    def labels(self) -> dict[str, str]:
        """Feature id -> its card's label (features without a card have none)."""
        return {card.id: card.label for card in self.cards}

    def suggestion_kinds(self) -> dict[str, list[str]]:
        """Feature id -> the kinds of suggestion it has, sorted."""
        kinds: dict[str, set[str]] = defaultdict(set)
        for s in self.suggestions:
            kinds[s.id].add(s.kind)
        return {feature: sorted(k) for feature, k in kinds.items()}

    def card(self, feature_id: str) -> FeatureCard | None:
        return next((card for card in self.cards if card.id == feature_id), None)
