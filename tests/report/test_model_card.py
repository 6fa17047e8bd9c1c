"""model_card: a Hugging Face README with worst-group accuracy and gaps as results, flags under examination."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard
from report_factories import TINY, report_of, row_from_cells

from editing_service.report import model_card
from editing_service.report.model_card import UNKNOWN_ROW


@pytest.fixture(scope="module")
def report() -> dict:
    rows = [
        row_from_cells(name, TINY, n_boot=20) for name in ("original", "shift_retrained", "token_deletion")
    ]
    return report_of(rows)


def test_model_card_renders_with_worst_group_result(report) -> None:
    text = model_card(report, model_id="surgeon-nurse-shift")
    card = ModelCard(text)
    assert card.data.model_name == "surgeon-nurse-shift"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    results = {r.metric_type: r for r in card.data.eval_results}
    shift = next(r for r in report.rows if r.name == "shift_retrained")
    assert results["worst_group_accuracy"].metric_value == pytest.approx(
        shift.worst_group_accuracy, abs=1e-4
    )
    assert results["worst_group_accuracy"].metric_config == "surgeon, F"
    assert results["worst_group_accuracy"].dataset_split == "test"
    for kind in (
        "group_balanced_accuracy",
        "demographic_parity_difference",
        "equalized_odds_difference",
        "tpr_gap_rms",
        "protected_attribute_accuracy",
    ):
        assert kind in results


def test_model_card_lists_ablated_features_and_limitations(report) -> None:
    text = model_card(report)
    examination = text.split("## Model Examination", 1)[1]
    assert (
        "| layer0.resid | 12 | &lt;script>alert(1)&lt;/script> | ana | fires on she/her | person |"
        in examination
    )
    assert "<script>" not in text
    limitations = text.split("## Bias, Risks, and Limitations", 1)[1]
    assert "pronouns" in limitations and "English" in limitations


def test_model_card_picks_a_named_row(report) -> None:
    card = ModelCard(model_card(report, row="original"))
    original = report.rows[0]
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values["accuracy"] == pytest.approx(original.accuracy, abs=1e-4)
    with pytest.raises(ValueError) as err:
        model_card(report, row="leace")
    assert str(err.value) == UNKNOWN_ROW.format(
        row="leace", available=["original", "shift_retrained", "token_deletion"]
    )
