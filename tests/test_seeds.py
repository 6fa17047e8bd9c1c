"""`run --seeds N`: SAE training and everything after it repeated with N seeds, summarised in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from factories import TINY_SPEC_WITHOUT_ORACLE, make_bios_frame, make_model_folder
from safetensors.numpy import load_file

from editing_service.cli import main
from editing_service.pipeline.run import SEEDS_NEED_AUTO
from editing_service.report import Report


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seeds")
    make_bios_frame(12).to_csv(root / "bios.csv", index=False)
    (root / "spec.yaml").write_text(TINY_SPEC_WITHOUT_ORACLE)
    return {"root": root, "spec": root / "spec.yaml", "model": make_model_folder(root, "bert")}


def _args(tiny: dict[str, Path], out: Path) -> list[str]:
    return ["-q", "run", "--spec", str(tiny["spec"]), "--out", str(out), "--model", str(tiny["model"]),
            "--d-sae", "64", "--k", "4", "--epochs", "5", "--attribution-examples", "16", "--circuit-top-k", "20",
            "--rows", "--budget"]


def test_seeds_repeat_the_saes_and_summarise_every_row(tiny: dict[str, Path]) -> None:
    out = tiny["root"] / "run"
    assert main([*_args(tiny, out), "--seeds", "2"]) == 0
    report = Report.read(out / "report.json")
    repeat = Report.read(out / "seeds" / "seed-1" / "report.json")
    assert report.seeds is not None and report.seeds.seeds == [0, 1]
    assert report.seeds.runs == [".", "seeds/seed-1"]
    first = load_file(out / "saes" / "blocks.0.out" / "sae_weights.safetensors")
    second = load_file(out / "seeds" / "seed-1" / "saes" / "blocks.0.out" / "sae_weights.safetensors")
    assert not np.allclose(first["W_enc"], second["W_enc"])  # another seed, other SAEs
    assert (out / "seeds" / "seed-1" / "activations" / "train").resolve() == (out / "activations" / "train").resolve()
    for row in report.rows:
        for metric, spread in report.seeds.rows[row.name].items():
            values = [row.metric(metric), repeat.row(row.name).metric(metric)]
            assert spread.values == pytest.approx(values)
            assert spread.mean == pytest.approx(np.mean(values))
            assert (spread.min, spread.max) == pytest.approx((min(values), max(values)))
    assert "Over 2 seeds" in (out / "report.html").read_text()
    assert json.loads((out / "run.json").read_text())["seeds"] == 2


def test_seeds_refuse_a_flags_file(tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags: [{site: blocks.0.out, feature: 1, state: spurious}]\n")
    with pytest.raises(SystemExit) as exit_info:
        main([*_args(tiny, tmp_path / "run"), "--seeds", "2", "--flags", str(flags)])
    assert exit_info.value.code == 2
    assert SEEDS_NEED_AUTO.format(n=2) in capsys.readouterr().err


def test_the_repeats_share_their_reads_of_the_unedited_classifier(
        tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import editing_service.edit.rows.context as context

    unedited: list[tuple[str, ...]] = []
    forward = context.head_features

    def counting(classifier, texts, **kwargs):  # noqa: ANN001, ANN202
        if len(classifier.interventions) == 0:
            unedited.append(tuple(texts))
        return forward(classifier, texts, **kwargs)

    monkeypatch.setattr(context, "head_features", counting)
    args = [*_args(tiny, tmp_path / "run"), "--seeds", "2"]
    args[args.index("--rows") + 1:args.index("--rows") + 1] = ["token_deletion"]
    assert main(args) == 0
    # the original's and word deletion's reads, each once for both seeds: the evaluation split and the
    # word-deleted training and evaluation texts
    assert len(unedited) == len(set(unedited)) == 3
    report = Report.read(tmp_path / "run" / "report.json")
    repeat = Report.read(tmp_path / "run" / "seeds" / "seed-1" / "report.json")
    assert repeat.row("original").metric("accuracy") == report.row("original").metric("accuracy")
