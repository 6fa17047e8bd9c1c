"""What every row reads: the classifier, its SAEs and flags, the splits and caches, the head settings.

Shared work is computed once and kept (`functools.cached_property`): the evaluation split's features
of the unedited model, the SHIFT ablation and its features on both splits, the retrained SHIFT head.
Interventions are put in place only inside `edited(...)`, which takes them off again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from editing_service.activations import ActivationCache
from editing_service.circuit import NodeScores
from editing_service.data import DatasetSpec, TextSplit
from editing_service.edit.ablation import FeatureAblation
from editing_service.edit.erasure import fit_site_erasers
from editing_service.edit.head_choice import choose_head_C
from editing_service.edit.retrain import head_features
from editing_service.edit.served import ServedSAE, build_ablations
from editing_service.model import TextClassifier, fit_linear_head
from editing_service.model.classifier import SiteIntervention, copy_head
from editing_service.model.memory import forward_batch_size
from editing_service.sae import SAE

if TYPE_CHECKING:
    from editing_service.settings import RunSettings


def _quiet(_step: str, _fraction: float) -> None:
    return None


@dataclass
class RowContext:
    """Inputs of every row (see the module docstring). `flagged` is what SHIFT ablates (the flags at the
    run's edit sites); `all_flagged` every spurious flag, those at extra sites (embeddings.out) too."""

    classifier: TextClassifier
    saes: dict[str, SAE]
    flagged: dict[str, list[int]]
    all_flagged: dict[str, list[int]]
    scores: dict[str, NodeScores]
    train_cache: ActivationCache
    validate_cache: ActivationCache
    spec: DatasetSpec
    train: TextSplit
    validate: TextSplit
    evaluate: TextSplit
    attribute: str | None
    settings: RunSettings
    fixed_C: float | None  # None: chosen on the validate split with the SHIFT edit in place (`C`)
    fixed_C_source: str
    original_head_origin: str  # how the original head came about, in words
    progress: Callable[[str, float], None] = _quiet
    served: dict[str, ServedSAE] = field(default_factory=dict)
    unedited_reads: dict[str, np.ndarray] = field(default_factory=dict)  # see `read`; may be shared across seeds

    def __post_init__(self) -> None:
        assert self.classifier.head is not None
        self.original_head: nn.Linear = copy_head(self.classifier.head)

    # ---- reading the classifier -----------------------------------------------------------------
    @cached_property
    def batch_size(self) -> int:
        return forward_batch_size(self.settings.model.batch_size, self.classifier, len(self.saes))

    @property
    def seed(self) -> int:
        return self.settings.edit.seed

    @contextmanager
    def edited(self, edits: list[SiteIntervention]) -> Iterator[None]:
        """The classifier with `edits` in place; none after the block."""
        self.classifier.set_interventions(edits)
        try:
            yield
        finally:
            self.classifier.set_interventions([])

    def read(self, texts: list[str], edits: list[SiteIntervention], step: str) -> np.ndarray:
        """The head features of `texts` [n, d] with `edits` in place.

        Reads of the unedited classifier depend on the texts alone, so they are kept in `unedited_reads`
        (keyed by the texts), which the repeats of a `--seeds` run share: their SAEs differ, their classifier
        does not."""
        if not edits:
            key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
            if key not in self.unedited_reads:
                self.unedited_reads[key] = self._forward(texts, [], step)
            return self.unedited_reads[key].copy()
        return self._forward(texts, edits, step)

    def _forward(self, texts: list[str], edits: list[SiteIntervention], step: str) -> np.ndarray:
        with self.edited(edits):
            return head_features(self.classifier, texts, batch_size=self.batch_size,
                                 on_progress=lambda f: self.progress(step, f))

    def fit_head(self, features: np.ndarray, labels: np.ndarray, *, C: float | None = None) -> nn.Linear:
        """A logistic-regression head on `features` (the run's C and seed unless `C` is given)."""
        return fit_linear_head(features, labels, n_classes=len(self.spec.labels),
                               C=self.C if C is None else C, seed=self.seed)

    def ablation(self, features: dict[str, list[int]]) -> list[FeatureAblation]:
        """The served ablation of `features` ({site: indices})."""
        return build_ablations(self.classifier, self.saes, features, self.train_cache,
                               mode=self.settings.edit.mode, served=self.served, form=self.settings.edit.served_form)

    # ---- shared results ---------------------------------------------------------------------------
    @property
    def n_flagged(self) -> int:
        return sum(len(v) for v in self.flagged.values())

    @property
    def own_head(self) -> bool:
        """True for a sequence classifier, whose original head is its own (not fitted by the service)."""
        return self.classifier.kind != "probe"

    @property
    def retrained_head(self) -> str:
        """How every retrained head is fitted, in words."""
        replaced = "replacing the model's own head, " if self.own_head else ""
        return (f"a logistic-regression head ({replaced}C = {self.C:g}: {self.C_source}) retrained on the "
                f"training subset {self.train.name!r}")

    @cached_property
    def original_eval(self) -> np.ndarray:
        return self.read(self.evaluate.texts, [], "eval:original")

    @cached_property
    def shift_ablations(self) -> list[FeatureAblation]:
        return self.ablation(self.flagged)

    @cached_property
    def shift_erasers(self) -> list[SiteIntervention]:
        """With `erase_at_edited_sites`: a LEACE eraser of the protected attribute at every edited site,
        fitted on the validate split with the ablation in place (it runs after the ablation)."""
        if not self.settings.edit.erase_at_edited_sites:
            return []
        assert self.attribute is not None
        with self.edited(self.shift_ablations):
            self.progress("erasure", 0.0)
            erasers = fit_site_erasers(
                self.classifier, self.classifier.resolve_sites(list(self.flagged)), self.validate.texts,
                labels=self.validate.labels, groups=self.validate.groups[self.attribute], attribute=self.attribute,
                batch_size=self.batch_size, seed=self.seed)
            self.progress("erasure", 1.0)
        return list(erasers)

    @cached_property
    def shift_edits(self) -> list[SiteIntervention]:
        """SHIFT's edit as served: the ablation, then (if asked) the erasers."""
        return [*self.shift_ablations, *self.shift_erasers]

    @cached_property
    def shift_eval(self) -> np.ndarray:
        return self.read(self.evaluate.texts, self.shift_edits, "eval:shift")

    @cached_property
    def shift_train(self) -> np.ndarray:
        return self.read(self.train.texts, self.shift_edits, "retrain:shift")

    @cached_property
    def shift_validate(self) -> np.ndarray:
        return self.read(self.validate.texts, self.shift_edits, "validate:shift")

    @cached_property
    def C(self) -> float:  # noqa: N802 (the usual name of logistic regression's inverse penalty)
        """The inverse L2 penalty of every retrained head: the run's fixed value, or the grid value whose head,
        fitted on the edited training features, has the best group-balanced accuracy on the edited
        validate features."""
        if self.fixed_C is not None:
            return self.fixed_C
        C, _ = choose_head_C(
            train_features=self.shift_train, train_labels=self.train.labels, validate_features=self.shift_validate,
            validate_labels=self.validate.labels,
            validate_groups=self.validate.groups.get(self.attribute) if self.attribute else None,
            label_names=list(self.spec.labels), seed=self.seed)
        return C

    @property
    def C_source(self) -> str:  # noqa: N802
        return self.fixed_C_source

    @cached_property
    def shift_head(self) -> nn.Linear:
        return self.fit_head(self.shift_train, self.train.labels)

    def flag_phrase(self, flagged: dict[str, list[int]]) -> str:
        n = sum(len(v) for v in flagged.values())
        return f"{n} flagged feature(s) at {len(flagged)} site(s) ({', '.join(flagged)})"
