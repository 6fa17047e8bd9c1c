"""How an example-level feature activation differs between classes and protected groups.

Separation is measured within each class, so that a feature is not credited with the label's own
correlation with the group: for group g, AUROC of the activation for telling g's examples from the other
groups' examples of the same class (the Mann-Whitney rank statistic, ties counted half, as sklearn's
`roc_auc_score` computes it; 0.5 = no separation, 1 = fires more on g,
0 = fires less). A class where the group is absent or alone has no AUROC (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

SINGLE_GROUP_CLASS = (
    "Cannot separate the groups of protected attribute {attribute!r} within every class on split "
    "{split!r}: class {label!r} has a single group ({group!r}). On a biased split the protected attribute "
    "equals the label; use a split that has every (class, group) cell, such as the validate split."
)
NO_ATTRIBUTE = "Split {split!r} has no protected attribute {attribute!r}; it has: {available}."


@dataclass
class GroupSeparation:
    """One protected attribute's view of one feature's example-level activation."""

    attribute: str
    positive_group: str | None  # the group the AUROCs are for (vs the rest)
    auroc_by_class: dict[str, float | None]  # class name -> within-class AUROC, None where undefined
    auroc: float | None  # mean of the defined within-class AUROCs
    separation: float | None  # min over classes with an AUROC of |AUROC - 0.5|
    mean: dict[str, float]  # group -> mean activation
    n: dict[str, int]  # group -> examples
    mean_by_class: dict[str, dict[str, float]]  # class -> group -> mean activation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attribute_groups(groups: Mapping[str, np.ndarray], attribute: str, *, split: str) -> np.ndarray:
    """The group names [n] of one protected attribute, or ValueError (NO_ATTRIBUTE)."""
    if attribute not in groups:
        raise ValueError(NO_ATTRIBUTE.format(split=split, attribute=attribute, available=sorted(groups) or "none"))
    return np.asarray(groups[attribute]).astype(str)


def class_means(values: np.ndarray, *, labels: np.ndarray, label_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Class name -> {"mean", "frac_active", "n"} of an example-level activation."""
    out: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(label_names):
        v = values[labels == c]
        out[name] = {
            "mean": float(v.mean()) if v.size else None,
            "frac_active": float((v > 0).mean()) if v.size else None,
            "n": int(v.size),
        }
    return out


def check_groups_in_every_class(
    *, labels: np.ndarray, groups: np.ndarray, label_names: Sequence[str], attribute: str, split: str
) -> None:
    """Raise ValueError (SINGLE_GROUP_CLASS) when a class present in `labels` has one group only."""
    for c, name in enumerate(label_names):
        present = np.unique(groups[labels == c])
        if present.size == 1:
            raise ValueError(
                SINGLE_GROUP_CLASS.format(attribute=attribute, split=split, label=name, group=str(present[0]))
            )


def auroc(positive: np.ndarray, values: np.ndarray) -> float:
    """Area under the ROC curve of `values` for the boolean `positive` (both classes present), from ranks."""
    ranks = rankdata(values)  # average ranks: a tie between a positive and a negative counts one half
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _within_class_auroc(
    values: np.ndarray, labels: np.ndarray, groups: np.ndarray, group: str, label_names: Sequence[str]
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for c, name in enumerate(label_names):
        in_class = labels == c
        target = groups[in_class] == group
        if target.all() or not target.any():
            out[name] = None
        else:
            out[name] = auroc(target, values[in_class])
    return out


def _separation(auroc_by_class: dict[str, float | None]) -> float | None:
    defined = [abs(a - 0.5) for a in auroc_by_class.values() if a is not None]
    return min(defined) if defined else None


def group_separation(
    values: np.ndarray, *, labels: np.ndarray, groups: np.ndarray, label_names: Sequence[str], attribute: str
) -> GroupSeparation:
    """Means per group and within-class AUROC of `values` [n_examples] for one attribute.

    For two groups the positive group is the later one in sorted order (the other's AUROC is 1 - AUROC);
    for more, the group whose one-vs-rest separation is largest.
    """
    groups = np.asarray(groups).astype(str)
    names = sorted(np.unique(groups).tolist())
    positive: str | None = None
    by_class: dict[str, float | None] = {name: None for name in label_names}
    if len(names) == 2:
        positive = names[1]
        by_class = _within_class_auroc(values, labels, groups, positive, label_names)
    elif len(names) > 2:
        per_group = {g: _within_class_auroc(values, labels, groups, g, label_names) for g in names}
        seps = {g: _separation(per_group[g]) for g in names}
        positive = max(names, key=lambda g: (-1.0 if seps[g] is None else seps[g], names.index(g)))
        by_class = per_group[positive]
    defined = [a for a in by_class.values() if a is not None]
    return GroupSeparation(
        attribute=attribute,
        positive_group=positive,
        auroc_by_class=by_class,
        auroc=float(np.mean(defined)) if defined else None,
        separation=_separation(by_class),
        mean={g: float(values[groups == g].mean()) for g in names},
        n={g: int((groups == g).sum()) for g in names},
        mean_by_class={
            name: {g: float(values[(labels == c) & (groups == g)].mean())
                   for g in names if ((labels == c) & (groups == g)).any()}
            for c, name in enumerate(label_names)
        },
    )
