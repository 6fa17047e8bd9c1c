"""features.json: what discovery writes and the review (CLI, API, workbench), automatic flags and the job store read.

A typed contract with a schema version. Documents written before the version field existed are version 1, so
discoveries already on disk or in a store keep loading.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from editing_service.features.card import FeatureCard
from editing_service.features.suggest import Suggestion
from editing_service.settings import AttributionSettings

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


class AttributionRecord(AttributionSettings):
    """How the node scores were computed (the run's attribution settings), on which subset, and each site's
    error-node score."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

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
    suggestions: list[Suggestion]
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
