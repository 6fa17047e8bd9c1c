"""Leakage probes: chance on a representation independent of the group, near 1 on one that encodes it."""

from __future__ import annotations

import numpy as np
import pytest
from report_factories import LABELS

from editing_service.report import evaluate_row, leakage_probes
from editing_service.report.leakage import (
    FEWER_FOLDS,
    ONE_GROUP,
    REPRESENTATION_NOT_FINITE,
    REPRESENTATION_SHAPE,
    TOO_FEW_PER_GROUP,
)

N, D = 400, 16


@pytest.fixture(scope="module")
def groups() -> np.ndarray:
    return np.array(["F", "M"])[np.random.default_rng(0).integers(0, 2, N)]


def _accuracies(result: dict) -> dict[str, float]:
    return {name: probe["accuracy"] for name, probe in result["probes"].items()}


def test_probes_are_near_chance_on_an_independent_representation(groups) -> None:
    x = np.random.default_rng(1).normal(size=(N, D))
    result, notes = leakage_probes(representation=x, groups=groups, seed=0)
    assert notes == []
    assert result["folds"] == 5 and result["n"] == N and result["dim"] == D
    assert result["majority_baseline"] == pytest.approx(max(np.mean(groups == "F"), np.mean(groups == "M")))
    for name, accuracy in _accuracies(result).items():
        assert abs(accuracy - 0.5) < 0.1, name
        assert abs(result["probes"][name]["balanced_accuracy"] - 0.5) < 0.1, name


def test_probes_are_near_one_on_a_representation_that_encodes_the_group(groups) -> None:
    x = np.random.default_rng(1).normal(size=(N, D))
    x[:, 0] += 4.0 * (groups == "F")
    result, _ = leakage_probes(representation=x, groups=groups, seed=0)
    accuracies = _accuracies(result)
    assert accuracies["linear"] > 0.95
    assert accuracies["mlp"] > 0.9


def test_mlp_probe_recovers_what_a_linear_probe_cannot(groups) -> None:
    # the group sets the spread of one coordinate, not its mean: no linear boundary separates it
    x = np.random.default_rng(1).normal(size=(N, D))
    x[:, 0] *= np.where(groups == "F", 3.0, 0.3)
    accuracies = _accuracies(leakage_probes(representation=x, groups=groups, seed=0)[0])
    assert accuracies["linear"] < 0.62
    assert accuracies["mlp"] > 0.75


def test_probes_are_seeded(groups) -> None:
    x = np.random.default_rng(2).normal(size=(N, D))
    first = leakage_probes(representation=x, groups=groups, seed=3)[0]
    second = leakage_probes(representation=x, groups=groups, seed=3)[0]
    assert _accuracies(first) == _accuracies(second)


def test_probes_are_skipped_or_shrunk_when_groups_are_too_small() -> None:
    x = np.zeros((6, 2))
    assert leakage_probes(representation=x, groups=np.array(["F"] * 6)) == (
        None,
        [ONE_GROUP.format(group="F")],
    )
    one = np.array(["F"] * 5 + ["M"])
    assert leakage_probes(representation=x, groups=one) == (
        None,
        [TOO_FEW_PER_GROUP.format(group="M", count=1)],
    )
    x = np.random.default_rng(0).normal(size=(12, 2))
    result, notes = leakage_probes(representation=x, groups=np.array(["F"] * 9 + ["M"] * 3))
    assert result["folds"] == 3
    assert notes == [FEWER_FOLDS.format(folds=3, asked=5, group="M", count=3)]


def test_bad_representations_are_refused(groups) -> None:
    with pytest.raises(ValueError) as err:
        leakage_probes(representation=np.zeros(N), groups=groups)
    assert str(err.value) == REPRESENTATION_SHAPE.format(n=N, shape=(N,))
    x = np.zeros((N, 2))
    x[0, 0] = np.nan
    with pytest.raises(ValueError) as err:
        leakage_probes(representation=x, groups=groups)
    assert str(err.value) == REPRESENTATION_NOT_FINITE


def test_evaluate_row_reports_leakage_beside_the_baseline(groups) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, N)
    x = rng.normal(size=(N, D))
    x[:, 1] += 4.0 * (groups == "M")
    row = evaluate_row(
        name="original",
        description="",
        y_true=y,
        y_pred=y,
        label_names=LABELS,
        groups={"gender": groups},
        attribute="gender",
        representation=x,
        n_boot=20,
    )
    leak = row.leakage
    assert leak.probes["linear"].accuracy > 0.95
    assert leak.majority_baseline < 0.6
    assert leak.chance_balanced_accuracy == 0.5
