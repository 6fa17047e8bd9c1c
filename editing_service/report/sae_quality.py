"""saes/quality.json: the quality of a run's SAEs (FVU, L0, dead fraction on training and validate tokens) and,
from the `saes` command, the classifier's accuracy with each SAE's reconstruction spliced in (with and without
the error term). A typed document with a schema version; documents written before the field are version 1."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from editing_service.activations import ActivationCache
from editing_service.data import TextSplit
from editing_service.model import Site, TextClassifier
from editing_service.report.metrics import group_accuracy
from editing_service.sae import SAEQuality, sae_quality
from editing_service.sae.splice import Dictionary, splice

SAE_QUALITY_SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants", validate_by_name=True,
                              serialize_by_alias=True)


class Accuracies(_Record):
    accuracy: float
    group_balanced_accuracy: float
    worst_group_accuracy: float


class OriginalAccuracies(Accuracies):
    cells: list[dict[str, Any]]  # {label, group, count, correct, accuracy} of every non-empty cell


class SplicedWithError(Accuracies):
    same_predictions: bool
    max_abs_probability_change: float


class SiteQuality(_Record):
    """One site's SAE: its quality on training and validate tokens, and the splice check when it was run."""

    train: SAEQuality
    validation: SAEQuality = Field(alias="validate")  # the validate split's tokens ("validate" is pydantic's)
    spliced_with_error: SplicedWithError | None = None
    spliced_without_error: Accuracies | None = None
    group_balanced_accuracy_drop: float | None = None  # original minus spliced without the error term


class TrainingData(_Record):
    """What the SAEs were trained on: the disk cache or the shuffled stream, and why."""

    mode: Literal["disk", "stream"]
    reason: str
    cached_tokens: int
    tokens_per_text: int | None = None


class SAEQualityReport(_Record):
    """Per-site SAE quality; from the `saes` command also the original accuracies, the settings and the time."""

    schema_version: Literal[1] = SAE_QUALITY_SCHEMA_VERSION
    sites: dict[str, SiteQuality]
    tokens_per_split: int | None = None  # discovery scores a sample of each split's tokens
    training_data: TrainingData | None = None
    validate_subset: str | None = None
    group_attribute: str | None = None
    original: OriginalAccuracies | None = None
    settings: dict[str, Any] | None = None  # the `saes` command's SAERunSettings, as JSON
    seconds: float | None = None

    @classmethod
    def read(cls, path: Path) -> SAEQualityReport:
        return cls.model_validate_json(path.read_text())

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2))


def _score(classifier: TextClassifier, split: TextSplit, attribute: str | None, batch_size: int) -> tuple:
    proba = classifier.predict_proba(split.texts, batch_size=batch_size)
    summary = group_accuracy(
        y_true=split.labels, y_pred=proba.argmax(1), groups=split.groups.get(attribute) if attribute else None,
        label_names=split.label_names,
    )
    return proba, summary


def _headline(summary: dict) -> dict[str, float]:
    return {k: summary[k] for k in Accuracies.model_fields}


def sae_quality_report(
    classifier: TextClassifier,
    saes: Mapping[Site, Dictionary],
    *,
    train_cache: ActivationCache,
    validate: TextSplit,
    validate_cache: ActivationCache,
    attribute: str | None,
    batch_size: int = 32,
    splice_check: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> SAEQualityReport:
    """Per-site quality; accuracies are on `validate`, grouped by `attribute` when given."""
    original_proba, original = _score(classifier, validate, attribute, batch_size)
    sites: dict[str, SiteQuality] = {}
    for i, (site, sae) in enumerate(saes.items()):
        entry = SiteQuality(train=sae_quality(sae, train_cache.site(site.name)),
                            validate=sae_quality(sae, validate_cache.site(site.name)))
        if splice_check:
            with splice(classifier.backbone, {site: sae}, keep_error=True):
                proba_err, with_error = _score(classifier, validate, attribute, batch_size)
            with splice(classifier.backbone, {site: sae}, keep_error=False):
                _, without_error = _score(classifier, validate, attribute, batch_size)
            entry.spliced_with_error = SplicedWithError(
                **_headline(with_error),
                same_predictions=bool((proba_err.argmax(1) == original_proba.argmax(1)).all()),
                max_abs_probability_change=float(np.abs(proba_err - original_proba).max()),
            )
            entry.spliced_without_error = Accuracies(**_headline(without_error))
            entry.group_balanced_accuracy_drop = (
                original["group_balanced_accuracy"] - without_error["group_balanced_accuracy"]
            )
        sites[site.name] = entry
        if progress is not None:
            progress("sae_quality", (i + 1) / len(saes))
    return SAEQualityReport(validate_subset=validate.name, group_attribute=attribute,
                            original=OriginalAccuracies(**_headline(original), cells=original["cells"]), sites=sites)
