"""Node scores: the indirect effect of every SAE feature and error node of a site, toward zero.

Scores are summed over token positions (padding dropped, [CLS] kept) and averaged over examples,
signed: a negative score means zeroing the node lowers the metric (the node supports the true class).

`AttributionDocument` is attribution.json, what discovery writes and the circuit graph and the edit read: a typed
contract with a schema version. Files written before the version field (a bare mapping of site -> scores) load as
version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, model_validator

ATTRIBUTION_SCHEMA_VERSION = 1


@dataclass
class NodeScores:
    """Scores of one site: `features` [d_sae] and the error node, from `n_examples` examples."""

    site: str
    features: np.ndarray
    error: float
    method: str
    n_examples: int



class ScoreAccumulator:
    """Sums per-example effects over batches, then averages."""

    def __init__(self, site: str, d_sae: int, method: str) -> None:
        self.site, self.method = site, method
        self.features = torch.zeros(d_sae, dtype=torch.float64)
        self.error = 0.0
        self.n = 0

    def add(self, feature_effects: torch.Tensor, error_effects: torch.Tensor, mask: torch.Tensor) -> None:
        """feature_effects [B, T, d_sae], error_effects [B, T] (already summed over d), mask [B, T]."""
        m = mask.to(feature_effects.dtype)
        self.features += (feature_effects * m[..., None]).sum((0, 1)).double().cpu()
        self.error += float((error_effects * m).sum())
        self.n += int(mask.shape[0])

    def result(self) -> NodeScores:
        n = max(self.n, 1)
        return NodeScores(site=self.site, features=(self.features / n).numpy(), error=self.error / n,
                          method=self.method, n_examples=self.n)


class SiteScoresRecord(BaseModel):
    """One site's `NodeScores` as stored."""

    # json.dumps wrote NaN as NaN; keep reading and writing it that way.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    site: str
    method: str
    n_examples: int
    error: float
    features: list[float]


class AttributionDocument(BaseModel):
    """attribution.json: every site's node scores."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = ATTRIBUTION_SCHEMA_VERSION
    sites: dict[str, SiteScoresRecord]

    @model_validator(mode="before")
    @classmethod
    def _unversioned(cls, data: Any) -> Any:
        if isinstance(data, dict) and "schema_version" not in data and "sites" not in data:
            return {"sites": data}
        return data

    @classmethod
    def of(cls, scores: Mapping[str, NodeScores]) -> AttributionDocument:
        return cls(sites={name: SiteScoresRecord(site=s.site, method=s.method, n_examples=s.n_examples,
                                                 error=s.error, features=s.features.tolist())
                          for name, s in scores.items()})

    def node_scores(self) -> dict[str, NodeScores]:
        return {name: NodeScores(site=r.site, method=r.method, n_examples=r.n_examples, error=r.error,
                                 features=np.asarray(r.features, dtype=np.float64))
                for name, r in self.sites.items()}

    @classmethod
    def read(cls, path: Path) -> dict[str, NodeScores]:
        return cls.model_validate_json(path.read_text()).node_scores()

    @classmethod
    def write(cls, path: Path, scores: Mapping[str, NodeScores]) -> None:
        path.write_text(cls.of(scores).model_dump_json())
