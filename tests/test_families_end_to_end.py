"""Every model family in both forms, end to end: run, then the saved models predict what the report says."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import ARCHITECTURES, DEVICES
from family_run import FORMS, run_family, write_tiny_spec


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_spec(tmp_path_factory.mktemp("families"))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_family_runs_end_to_end_and_the_report_describes_the_saved_models(
    spec: Path, tmp_path: Path, arch: str, form: str
) -> None:
    run = run_family(tmp_path, spec, arch, form)
    assert run.n_edits == 2  # the top feature of each of the two block sites is ablated
    assert run.n_erasers == 2  # then the protected attribute is erased there (the default)
    assert [r.name for r in run.report.rows] == ["original", "shift", "shift_retrained"]
    assert run.report.model.classifier_kind == form
    for row in ("original", "shift_retrained"):
        assert run.row_accuracy[row] == run.saved_accuracy[row], row


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("arch", "form"), [("llama", "sequence_classification"), ("bert", "probe")])
def test_a_bfloat16_model_runs_end_to_end(spec: Path, tmp_path: Path, arch: str, form: str, device: str) -> None:
    run = run_family(tmp_path, spec, arch, form, device=device, dtype="bfloat16")
    assert run.dtype == "bfloat16" and run.n_edits == 2
    for row in ("original", "shift_retrained"):
        assert run.row_accuracy[row] == run.saved_accuracy[row], row
