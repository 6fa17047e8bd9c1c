"""build_report: row order, flag policy, findings against the baselines, limitations, warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_factories import DATASET, FLAGS, MODEL, balanced_cells, report_of, row_from_cells

from editing_service.report import Report, Row, SkippedRow, build_report, compare_rows
from editing_service.report.build import (
    DUPLICATE_ROW,
    FLAG_MISSING,
    FLAGS_ON_EVALUATION,
    NO_ROWS,
    ROWS_DIFFER,
)
from editing_service.report.schema import SCHEMA_VERSION, WRONG_VERSION, Leakage, Probe

CELLS = [("nurse", "F"), ("nurse", "M"), ("surgeon", "F"), ("surgeon", "M")]


def row(name: str, *accuracies: float) -> Row:
    return row_from_cells(name, balanced_cells(dict(zip(CELLS, accuracies, strict=True))))


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return [
        row("oracle", 0.92, 0.88, 0.86, 0.93),
        row("token_deletion", 0.95, 0.80, 0.78, 0.96),
        row("random_ablation", 0.99, 0.20, 0.15, 0.99),
        row("shift_retrained", 0.93, 0.85, 0.84, 0.94),
        row("original", 0.99, 0.21, 0.12, 0.99),
    ]


def test_report_keeps_the_row_order_and_round_trips_through_json(rows, tmp_path) -> None:
    report = report_of(rows)
    assert [r.name for r in report.rows] == [r.name for r in rows]  # the registry's order, as given
    json.loads(report.model_dump_json())  # plain JSON, no NaN
    assert report.dataset.sha256 == "fca18329" and report.model.model_dump()["classifier_kind"] == "probe"
    report.write(tmp_path / "report.json")
    again = Report.read(tmp_path / "report.json")
    assert again == report and again.schema_version == SCHEMA_VERSION
    assert again.rows[0].cells[0].ci == report.rows[0].cells[0].ci


def test_a_report_of_another_schema_version_is_refused(rows, tmp_path) -> None:
    document = json.loads(report_of(rows).model_dump_json())
    document["schema_version"] = 1
    (tmp_path / "report.json").write_text(json.dumps(document))
    with pytest.raises(ValueError) as err:
        Report.read(tmp_path / "report.json")
    assert str(err.value) == WRONG_VERSION.format(path=tmp_path / "report.json", got=1, expected=SCHEMA_VERSION)


def test_the_comparison_says_which_rows_shift_beats_and_which_not(rows) -> None:
    comparison = report_of(rows).comparison
    # shift_retrained: group-balanced 0.89, worst 0.84; the oracle 0.8975 / 0.86 stays above it
    assert comparison.beats == ["token_deletion", "random_ablation", "original"]
    assert comparison.does_not_beat == ["oracle"]
    assert any(f.startswith("In short,") and "does not beat: the oracle head" in f for f in comparison.findings)


def test_flags_and_policy_say_who_why_and_how(rows) -> None:
    report = report_of(rows)
    assert report.flags[1].why == "80% of its mass on gendered words"  # `rationale` read as `why`
    policy = report.flag_policy
    assert policy.sources == {"lexicon": 1, "person": 1}
    assert "a person" in policy.statement and "lexicon" in policy.statement
    assert "'validate'" in policy.statement and policy.chosen_on_evaluation_split is False
    custom = report_of(rows, flag_policy="Chosen by two reviewers on the validation split.")
    assert custom.flag_policy.statement == "Chosen by two reviewers on the validation split."


def test_flags_chosen_on_the_evaluation_split_are_warned_about(rows) -> None:
    report = report_of(rows, flag_selection_subset="test")
    assert report.flag_policy.chosen_on_evaluation_split is True
    assert FLAGS_ON_EVALUATION.format(subset="test") in report.warnings


def test_comparison_says_plainly_when_shift_does_not_beat_a_baseline(rows) -> None:
    comparison = report_of(rows).comparison
    assert comparison.shift_row == "shift_retrained"
    versus = comparison.versus
    assert versus["random_ablation"]["group_balanced_accuracy"].verdict == "better"
    # worst group: SHIFT + retrain 0.84 vs token deletion 0.78 -> better; group-balanced 0.89 vs 0.8725
    assert versus["token_deletion"]["worst_group_accuracy"].verdict == "better"
    assert comparison.shift_beats_baselines is True
    assert versus["token_deletion"]["worst_group_accuracy"].intervals_overlap is not None
    weaker = [r for r in rows if r.name != "shift_retrained"] + [
        row("shift_retrained", 0.9, 0.7, 0.7, 0.9)
    ]
    comparison = report_of(weaker).comparison
    assert comparison.shift_beats_baselines is False
    text = " ".join(comparison.findings)
    assert "does NOT beat deletion of the concept's tokens on worst-group accuracy (0.700 vs 0.780" in text


def test_missing_baselines_are_named(rows) -> None:
    only = [r for r in rows if r.name in ("original", "shift_retrained")]
    report = report_of(only)
    assert report.comparison.shift_beats_baselines is None
    assert any("No baseline was run" in f for f in report.comparison.findings)
    skipped = report_of(only, skipped_rows=[SkippedRow(name="leace", title="LEACE", reason="no attribute")])
    assert "Not run in this report: LEACE (no attribute)." in skipped.limitations


def test_single_attribute_trap_is_a_finding() -> None:
    trap = row("original", 0.95, 0.75, 0.75, 0.95)  # by gender 0.85 vs 0.85, cells 0.75 to 0.95
    findings = report_of([trap]).comparison.findings
    assert any("a single protected column hides the bias" in f for f in findings)


def test_limitations_cover_binary_gender_and_english(rows) -> None:
    limitations = " ".join(report_of(rows, limitations=["Only surgeons and nurses."]).limitations)
    assert "binary" in limitations and "pronouns" in limitations and "Bias in Bios" in limitations
    assert "English" in limitations and "Only surgeons and nurses." in limitations


def test_small_cells_reach_the_report_warnings() -> None:
    small = row_from_cells("original", {c: (10, 8) for c in CELLS})
    report = report_of([small])
    assert sum(w.startswith("[original] Cell (") for w in report.warnings) == 4


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [], NO_ROWS),
        (lambda rows: rows + rows[:1], DUPLICATE_ROW.format(name="oracle")),
        (
            lambda rows: [*rows[:1], rows[1].model_copy(update={"attribute": "race"})],
            ROWS_DIFFER.format(name="token_deletion", got="race", expected="gender"),
        ),
    ],
)
def test_bad_rows_are_refused(rows, mutate, message) -> None:
    with pytest.raises(ValueError) as err:
        report_of(mutate(rows))
    assert str(err.value) == message


def test_flags_need_site_and_feature(rows) -> None:
    with pytest.raises(ValueError) as err:
        report_of(rows, flags=[{"site": "layer0.resid"}])
    assert str(err.value) == FLAG_MISSING.format(index=0, field="feature")


def test_leakage_finding_when_only_the_mlp_recovers_the_attribute(rows) -> None:
    probe = lambda a: Probe(accuracy=a, accuracy_std=0.0, balanced_accuracy=a, seconds=0.0)  # noqa: E731
    leakage = Leakage(n=400, dim=8, folds=5, majority_baseline=0.5, chance_balanced_accuracy=0.5,
                      probes={"linear": probe(0.51), "mlp": probe(0.71)}, settings={})
    leaky = rows[3].model_copy(update={"leakage": leakage})
    findings = compare_rows([leaky]).findings
    assert any("an MLP probe still recovers gender (0.710)" in f for f in findings)


def test_build_report_is_keyword_only(rows) -> None:
    with pytest.raises(TypeError):
        build_report("title", DATASET, MODEL, rows, FLAGS)  # type: ignore[misc]


def test_random_baseline_does_not_depend_on_the_order_of_the_flags() -> None:
    from editing_service.features.flags import Flag, FlagSet
    from editing_service.report.baselines import random_features

    flags = [Flag(site=s, feature=f) for s, f in [("blocks.1.out", 3), ("blocks.0.out", 5), ("blocks.0.out", 1)]]
    alive = {"blocks.0.out": np.ones(50, bool), "blocks.1.out": np.ones(50, bool)}
    one = FlagSet(flags=flags).spurious()
    other = FlagSet(flags=flags[::-1]).spurious()
    assert list(one) == list(other) == ["blocks.0.out", "blocks.1.out"]
    assert random_features(one, alive, seed=3) == random_features(dict(reversed(list(one.items()))), alive, seed=3)
