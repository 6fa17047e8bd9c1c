"""One whole run (discover, flags, edit, report) on a tiny random model of one family, in one form.

Shared by the end-to-end family test and `benchmarks/family_matrix.py` (the family x form table).
Settings are the smallest that exercise every step: 2 blocks, 16-feature SAEs, a handful of texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from factories import TINY_SPEC_WITHOUT_ORACLE, make_bios_frame, make_model_folder

from editing_service.data import load_role, load_spec
from editing_service.edit import load_model
from editing_service.features.flags import Flag, FlagSet
from editing_service.pipeline.discover import run_discover
from editing_service.pipeline.edit import run_edit
from editing_service.report import Report
from editing_service.settings import (
    AttributionSettings,
    CircuitSettings,
    EditSettings,
    ModelSettings,
    RunSettings,
    SAESettings,
    SuggestionSettings,
)

FORMS = ("sequence_classification", "probe")


@dataclass
class FamilyRun:
    """What a run produced: the report's rows and what the saved models predict on the evaluation split."""

    report: Report
    row_accuracy: dict[str, float]
    saved_accuracy: dict[str, float]
    n_edits: int  # feature ablations of the saved edited model
    n_erasers: int  # its LEACE erasers (one per edited site: the tiny spec has a protected attribute)
    dtype: str


def write_tiny_spec(root: Path, n_per_cell: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    make_bios_frame(n_per_cell).to_csv(root / "bios.csv", index=False)
    (root / "spec.yaml").write_text(TINY_SPEC_WITHOUT_ORACLE)
    return root / "spec.yaml"


def tiny_settings(spec: Path, model: Path, *, device: str = "cpu", dtype: str = "auto") -> RunSettings:
    return RunSettings(
        spec=str(spec),
        model=ModelSettings(path=str(model), batch_size=8, max_length=32, device=device, dtype=dtype),
        sae=SAESettings(d_sae=16, k=2, n_epochs=1, batch_size=128),
        attribution=AttributionSettings(n_examples=8, batch_size=8),
        circuit=CircuitSettings(top_k=4),
        suggestions=SuggestionSettings(min_active_tokens=1),
        edit=EditSettings(head_C=1.0, baselines=[], n_boot=2),
    )


def run_family(root: Path, spec: Path, arch: str, form: str, *, device: str = "cpu",
               dtype: str = "auto") -> FamilyRun:
    """Run the whole pipeline on a tiny `arch` model in `form`, flagging the top circuit feature of every
    site, then load both saved models and score them on the evaluation split."""
    model = make_model_folder(root, arch, sequence_classification=form == "sequence_classification")
    out = root / f"run-{arch}-{form}"
    document = run_discover(tiny_settings(spec, model, device=device, dtype=dtype), out)
    top = {}
    for entry in document.circuit:  # strongest first
        top.setdefault(entry.site, entry.feature)
    flags = FlagSet(flags=[Flag(site=site, feature=feature, reviewer="test") for site, feature in top.items()])
    report = run_edit(out, flags)
    evaluate = load_role(load_spec(str(spec)), "evaluate")
    saved = {}
    n_edits, n_erasers, loaded_dtype = 0, 0, ""
    for row, folder in (("original", "original"), ("shift_retrained", "edited")):
        classifier = load_model(out / "models" / folder, device=device)
        predicted = np.array([classifier.classes.index(c) for c in classifier.predict(evaluate.texts)])
        saved[row] = float((predicted == evaluate.labels).mean())
        kinds = [type(m).__name__ for m in classifier.interventions]
        n_edits, n_erasers = max(n_edits, kinds.count("FeatureAblation")), max(n_erasers, kinds.count("ConceptErasure"))
        loaded_dtype = str(classifier.dtype).removeprefix("torch.")
    rows = {row.name: float(row.accuracy) for row in report.rows}
    (out / "family_run.json").write_text(json.dumps({"rows": rows, "saved": saved}))
    return FamilyRun(report=report, row_accuracy=rows, saved_accuracy=saved, n_edits=n_edits,
                     n_erasers=n_erasers, dtype=loaded_dtype)
