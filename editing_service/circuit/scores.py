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
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, model_validator

ATTRIBUTION_SCHEMA_VERSION = 1

# How pydantic reads and writes a score vector: a JSON list of floats, a float64 array in memory.
ScoreArray = Annotated[np.ndarray, PlainValidator(lambda v: np.asarray(v, dtype=np.float64)),
                       PlainSerializer(lambda a: a.tolist(), return_type=list[float])]


@dataclass
class NodeScores:
    """Scores of one site: `features` [d_sae] and the error node, from `n_examples` examples."""

    site: str
    features: ScoreArray
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


class AttributionDocument(BaseModel):
    """attribution.json: every site's node scores."""

    # json.dumps wrote NaN as NaN; keep reading and writing it that way.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    schema_version: Literal[1] = ATTRIBUTION_SCHEMA_VERSION
    sites: dict[str, NodeScores]

    @model_validator(mode="before")
    @classmethod
    def _unversioned(cls, data: Any) -> Any:
        if isinstance(data, dict) and "schema_version" not in data and "sites" not in data:
            return {"sites": data}
        return data

    @classmethod
    def read(cls, path: Path) -> dict[str, NodeScores]:
        return cls.model_validate_json(path.read_text()).sites

    @classmethod
    def write(cls, path: Path, scores: Mapping[str, NodeScores]) -> None:
        path.write_text(cls(sites=dict(scores)).model_dump_json())
