"""A whole run with BatchTopK SAEs: they are saved as the JumpReLU SAEs they serve, and the served edit fires
exactly where the SAE's own codes of the flagged features do."""

from __future__ import annotations

import json

from factories import make_model_folder
from family_run import tiny_settings, write_tiny_spec

from editing_service.features.flags import Flag, FlagSet
from editing_service.pipeline.discover import run_discover
from editing_service.pipeline.edit import run_edit
from editing_service.settings import RunSettings


def test_a_batchtopk_run_serves_its_edit_exactly(tmp_path) -> None:
    spec = write_tiny_spec(tmp_path, n_per_cell=20)
    base = tiny_settings(spec, make_model_folder(tmp_path, "bert")).model_dump()
    base["sae"].update(architecture="batchtopk", n_epochs=2, batch_size=64)
    out = tmp_path / "run"
    document = run_discover(RunSettings.model_validate(base), out)
    for folder in sorted((out / "saes").iterdir()):
        if folder.is_dir():
            cfg = json.loads((folder / "cfg.json").read_text())
            assert cfg["architecture"] == "jumprelu" and cfg["metadata"]["trained_as"] == "batchtopk"
    top = {}
    for entry in document.circuit:
        top.setdefault(entry.site, entry.feature)
    report = run_edit(out, FlagSet(flags=[Flag(site=s, feature=f, reviewer="test") for s, f in top.items()]))
    agreement = report.edit["served_agreement"]
    assert sorted(agreement) == sorted(top)
    for stats in agreement.values():
        assert stats["precision"] == stats["recall"] == 1.0
    assert {row.name for row in report.rows} >= {"original", "shift", "shift_retrained"}
