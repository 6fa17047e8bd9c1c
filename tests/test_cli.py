"""The command line end to end on a tiny random model and a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import make_bios_frame, make_model_folder

from editing_service.cli import main
from editing_service.sae import load_sae

SPEC = """
name: tiny_bios
source: {kind: file, path: bios.csv}
splits: {kind: column, column: split, names: [train, validate, test]}
text_column: text
label_column: occupation
labels: [nurse, surgeon]
protected:
  - {name: gender, column: gender, groups: [F, M], stereotype: {F: nurse, M: surgeon}}
subsets:
  train_biased: {split: train, cells: [[surgeon, M], [nurse, F]]}
  validate: {split: validate}
  test: {split: test}
  train_oracle: {split: train, per_cell: 6}
roles: {train: train_biased, validate: validate, evaluate: test, oracle: train_oracle}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    make_bios_frame(12).to_csv(root / "bios.csv", index=False)
    (root / "spec.yaml").write_text(SPEC)
    return {"root": root, "spec": root / "spec.yaml", "model": make_model_folder(root, "bert")}


def test_saes_command_trains_saves_and_reports(tiny: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    out = tiny["root"] / "out"
    code = main(["-q", "saes", "--spec", str(tiny["spec"]), "--out", str(out), "--model", str(tiny["model"]),
                 "--d-sae", "64", "--k", "4", "--epochs", "5", "--sites", "blocks.0.out", "blocks.1.mlp"])
    assert code == 0
    report = json.loads((out / "saes" / "quality.json").read_text())
    assert set(report["sites"]) == {"blocks.0.out", "blocks.1.mlp"}
    for name, entry in report["sites"].items():
        sae = load_sae(out / "saes" / name)
        assert sae.cfg.d_sae == 64 and sae.cfg.hook_name == name
        assert entry["validate"]["l0"] <= 4.0 + 1e-6
        assert 0.0 <= entry["validate"]["fvu"] < 1.5
        assert entry["spliced_with_error"]["same_predictions"] is True
        assert entry["spliced_with_error"]["group_balanced_accuracy"] == report["original"]["group_balanced_accuracy"]
    assert "blocks.0.out" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spec", "no_such_spec"], "no_such_spec"),
        (["--sites", "blocks.9.out"], "Unknown site 'blocks.9.out'"),
        (["--sites", "layer1"], "Bad site name 'layer1'"),
        (["--model", "/nonexistent/model"], "does not exist"),
        (["--d-sae", "0"], "d_sae"),
    ],
)
def test_bad_input_is_a_one_line_error_without_traceback(
    tiny: dict[str, Path], capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    base = {"--spec": str(tiny["spec"]), "--model": str(tiny["model"]), "--out": str(tiny["root"] / "bad")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["-q", "saes", *[x for kv in base.items() for x in kv], "--epochs", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("editing-service: error: ") and message in err and "Traceback" not in err
    assert err.count("\n") == 1
