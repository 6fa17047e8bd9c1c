"""The feature card: everything a reviewer sees about one SAE feature, as one JSON-serialisable record.

Field names follow Neuronpedia's feature records where they fit (`frac_nonzero`, `max_activation`,
`activation_histogram`, `top_examples` with `tokens` / `values` / `max_value`), in snake_case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class FeatureCard:
    """One feature of one site's SAE, measured on one split.

    Example-level activations (`by_class`, `by_group`, top-example order) use `example_activation`
    ("max", "sum" or "mean" over the example's tokens).
    """

    site: str  # e.g. "blocks.0.out"
    feature: int  # index in the site's SAE
    id: str  # "blocks.0.out/123"
    score: float | None  # signed node score (indirect effect toward zero; < 0 = supports the true class)
    rank: int  # 1 = largest |score| among the cards built together
    pushes: str | None  # the class the feature pushes toward (see `pushes_basis`)
    pushes_basis: str | None  # "class_scores", "class_effects" or "score_sign_and_activation"
    label: str  # automatic label from the top tokens, e.g. "she / her / hers"
    split: str  # the split the activations were measured on
    n_tokens: int
    n_examples: int
    example_activation: str
    frac_nonzero: float  # share of tokens where the feature is nonzero
    max_activation: float
    activation_histogram: dict[str, list[Any]]  # {"bin_edges": [21], "counts": [20]} of nonzero activations
    top_examples: list[dict[str, Any]]  # {"example", "max_value", "max_value_token_index", "start", ...}
    top_tokens: list[dict[str, Any]]  # {"token", "share" of the activation mass, "count"}
    by_class: dict[str, dict[str, Any]]  # class -> {"mean", "frac_active", "n"}
    by_group: dict[str, dict[str, Any]]  # attribute -> GroupSeparation.to_dict()
    score_by_class: dict[str, float] | None  # class -> node score on that class's examples, when given
    class_effects: dict[str, float] | None  # class -> effect on that class's logit, when given
    neighbours: list[dict[str, Any]]  # {"feature", "id", "cosine", "in_cards"}
    flag: dict[str, Any] | None = None  # filled by the caller (a person's decision)
    suggestions: list[dict[str, Any]] = field(default_factory=list)  # Suggestion.to_dict() entries

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureCard:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
