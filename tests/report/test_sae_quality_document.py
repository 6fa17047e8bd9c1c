"""saes/quality.json as a typed document: it round-trips, old documents load, malformed ones are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from editing_service.report.sae_quality import (
    Accuracies,
    OriginalAccuracies,
    SAEQualityReport,
    SiteQuality,
    SplicedWithError,
    TrainingData,
)
from editing_service.sae import SAEQuality

HEADLINE = {"accuracy": 0.9, "group_balanced_accuracy": 0.8, "worst_group_accuracy": 0.6}


def _report() -> SAEQualityReport:
    quality = SAEQuality(fvu=0.2, l0=31.5, dead_fraction=0.01, mean_l2_error=1.2, n_tokens=100)
    return SAEQualityReport(
        sites={"blocks.0.out": SiteQuality(
            train=quality, validate=quality.model_copy(update={"fvu": None}),
            spliced_with_error=SplicedWithError(**HEADLINE, same_predictions=True, max_abs_probability_change=0.0),
            spliced_without_error=Accuracies(**HEADLINE), group_balanced_accuracy_drop=0.0)},
        training_data=TrainingData(mode="disk", reason="1 MB <= budget 50 GB", cached_tokens=100),
        validate_subset="validate", group_attribute=None,
        original=OriginalAccuracies(**HEADLINE, cells=[{"label": "nurse", "group": None, "accuracy": 0.9}]),
        settings={"spec": "tiny"}, seconds=3.5,
    )


def test_the_report_round_trips_through_its_file(tmp_path: Path) -> None:
    report = _report()
    report.write(tmp_path / "quality.json")
    assert SAEQualityReport.read(tmp_path / "quality.json") == report
    raw = json.loads((tmp_path / "quality.json").read_text())
    assert raw["schema_version"] == 1 and raw["sites"]["blocks.0.out"]["validate"]["fvu"] is None
    assert raw["original"]["cells"][0]["group"] is None


def test_a_discovery_report_without_the_splice_check_or_the_version_field_loads(tmp_path: Path) -> None:
    raw = {"sites": {"blocks.0.out": {"train": {"fvu": 0.1, "l0": 32.0, "dead_fraction": 0.0, "mean_l2_error": 1.0,
                                                "n_tokens": 16384},
                                      "validate": {"fvu": 0.2, "l0": 32.0, "dead_fraction": 0.0,
                                                   "mean_l2_error": 1.1, "n_tokens": 16384}}},
           "tokens_per_split": 16384,
           "training_data": {"mode": "stream", "reason": "too big", "cached_tokens": 160, "tokens_per_text": 4}}
    (tmp_path / "quality.json").write_text(json.dumps(raw))
    report = SAEQualityReport.read(tmp_path / "quality.json")
    assert report.schema_version == 1 and report.sites["blocks.0.out"].spliced_with_error is None
    assert report.training_data is not None and report.training_data.mode == "stream"


@pytest.mark.parametrize(("change", "field"), [({"schema_version": 2}, "schema_version"),
                                               ({"sites": {"s": {"train": {"fvu": 0.1}}}}, "sites.s.validate"),
                                               ({"extra": True}, "extra")])
def test_another_version_or_a_malformed_report_is_refused(change: dict, field: str) -> None:
    raw = {**json.loads(_report().model_dump_json()), **change}
    with pytest.raises(ValidationError) as err:
        SAEQualityReport.model_validate(raw)
    assert field in {".".join(map(str, e["loc"])) for e in err.value.errors()}
