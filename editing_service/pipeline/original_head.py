"""The run's original head: fitted at discovery (a probe's) or kept (a sequence classifier's own), and how it
came about, written as the provenance of `models/original` and read back by the edit.

`OriginalHead` is that provenance, typed: discovery writes it, the edit reads its C (the retrained heads reuse a
probe's C) and the words the report's `original` row uses.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from editing_service.activations import ActivationCache
from editing_service.artifacts import ArtifactDir
from editing_service.data import TextSplit
from editing_service.edit.head_choice import choose_head_C
from editing_service.model import TextClassifier

HeadKind = Literal["logistic regression", "the model's own"]


class OriginalHead(BaseModel):
    """The provenance of `models/original` (older folders may lack fields: each has a default)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    role: Literal["original"] = "original"
    spec: str | None = None
    trained_on: str = "train"
    head: HeadKind | None = None
    C: float | None = Field(None, description="a probe head's inverse L2 penalty; None for the model's own head")
    C_on_validate: list[dict[str, float]] = Field(
        default_factory=list, description="with C chosen on the validate split: every candidate's score")

    def retrained_heads(self, kind: str) -> tuple[float | None, str, str]:
        """(C for the retrained heads, None to choose it with the edit in place; where that C comes from; how
        the original head came about, in words).

        A probe's head was fitted at discovery with a C chosen on the validate split, which the retrained heads
        reuse. A sequence classifier's own head has none: its retrained heads get the C whose SHIFT head does
        best on the validate split with the edit in place."""
        if self.C is not None:
            return (self.C, "the original head's, chosen on the validate split",
                    f"a logistic-regression probe head (C = {self.C:g}) fitted on the training subset "
                    f"{self.trained_on!r}")
        if kind != "probe":
            return (None, "chosen on the validate split with the edit in place (the original head is the model's "
                    "own)", "the sequence classifier's own head, kept as saved")
        return 1.0, "1.0 (the original head recorded no C)", "the probe head saved with the model"


def read_original_head(artifacts: ArtifactDir) -> OriginalHead:
    """The provenance discovery wrote into `models/original/config.json`."""
    config = json.loads(artifacts.require(artifacts.original_model / "config.json").read_text())
    return OriginalHead.model_validate(config.get("provenance") or {})


def fit_original_head(
    classifier: TextClassifier,
    train: TextSplit,
    train_cache: ActivationCache,
    *,
    spec: str,
    C: float | str = 1.0,
    validate: TextSplit | None = None,
    validate_cache: ActivationCache | None = None,
    attribute: str | None = None,
) -> OriginalHead:
    """Fit a probe classifier's head on the cached training features (sequence classifiers keep theirs).

    With C="validate", the regularisation is chosen on the validate split's cached features. Returns what was
    done, for provenance.
    """
    if classifier.kind != "probe":
        return OriginalHead(spec=spec, trained_on=train.name, head="the model's own")
    assert train_cache.labels is not None
    table: list[dict[str, float]] = []
    if C == "validate":
        assert validate is not None and validate_cache is not None
        C, table = choose_head_C(
            train_features=train_cache.head_features, train_labels=train_cache.labels,
            validate_features=validate_cache.head_features, validate_labels=validate.labels,
            validate_groups=validate.groups.get(attribute) if attribute else None,
            label_names=list(classifier.classes),
        )
    classifier.fit_head(train_cache.head_features, train_cache.labels, C=float(C))
    return OriginalHead(spec=spec, trained_on=train.name, head="logistic regression", C=float(C),
                        C_on_validate=table)
