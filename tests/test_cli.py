"""The command line end to end on a tiny random model and a tiny dataset."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from factories import TINY_SPEC, make_bios_frame, make_model_folder

from editing_service.cli import main
from editing_service.sae import load_sae


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    make_bios_frame(12).to_csv(root / "bios.csv", index=False)
    (root / "spec.yaml").write_text(TINY_SPEC)
    return {"root": root, "spec": root / "spec.yaml", "model": make_model_folder(root, "bert")}


def test_saes_command_trains_saves_and_reports(tiny: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    out = tiny["root"] / "out"
    code = main(["-q", "saes", "--spec", str(tiny["spec"]), "--out", str(out), "--model", str(tiny["model"]),
                 "--d-sae", "64", "--k", "4", "--epochs", "5", "--sae-batch-size", "64",
                 "--sites", "blocks.0.out", "blocks.1.mlp"])
    assert code == 0
    report = json.loads((out / "saes" / "quality.json").read_text())
    assert set(report["sites"]) == {"blocks.0.out", "blocks.1.mlp"}
    assert report["settings"]["sae"]["batch_size"] == 64
    for name, entry in report["sites"].items():
        sae = load_sae(out / "saes" / name)
        assert sae.cfg.d_sae == 64 and sae.cfg.hook_name == name and sae.cfg.metadata["batch_size"] == 64
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
        (["--architecture", "gated"], "unknown SAE architecture 'gated'; known architectures: ['batchtopk', "),
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


@pytest.fixture(scope="module")
def discovered(tiny: dict[str, Path]) -> Path:
    out = tiny["root"] / "run"
    code = main(["-q", "run", "--spec", str(tiny["spec"]), "--out", str(out), "--model", str(tiny["model"]),
                 "--d-sae", "64", "--k", "4", "--epochs", "5", "--attribution-examples", "16",
                 "--circuit-top-k", "20", "--budget"])
    assert code == 0
    return out


def test_run_writes_report_features_and_models(discovered: Path) -> None:
    import editing_service

    report = json.loads((discovered / "report.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names == ["original", "shift", "shift_retrained", "random_ablation", "token_deletion", "leace", "oracle"]
    assert report["schema_version"] == 2 and report["budget_curve"]["points"][-1]["n"] == len(report["flags"])
    assert report["flag_policy"]["sources"] == {"lexicon": len(report["flags"])}
    html = (discovered / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "shift_retrained" in html
    features = json.loads((discovered / "features.json").read_text())
    assert len(features["cards"]) == len(features["circuit"]) == 40  # 20 per site, 2 sites
    edited = editing_service.load_model(discovered / "models" / "edited")
    original = editing_service.load_model(discovered / "models" / "original")
    assert len(edited.interventions) >= 1 and len(original.interventions) == 0
    proba = edited.predict_proba(["she is a nurse", "he is a surgeon"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1.0)
    assert (discovered / "models" / "edited" / "README.md").is_file()


def test_features_command_prints_cards(discovered: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["-q", "features", "--out", str(discovered), "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("rank") == 3 and "score" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["features", "--limit", "-1"], "argument --limit: must be at least 1, got -1"),
        (["features", "--limit", "x"], "argument --limit: expected a whole number, got 'x'"),
        (["features", "--site", "blocks.7.out"],
         "The run has no site 'blocks.7.out'; its sites are ['blocks.0.out', 'blocks.1.out']."),
        (["circuit", "--svg", "/no/such/folder/graph.svg"], "argument --svg: the folder /no/such/folder does not exist"),
        (["circuit", "--json", "."], "argument --json: . is a folder, not a file"),
    ],
)
def test_careless_review_options_are_one_line_errors(discovered: Path, capsys: pytest.CaptureFixture,
                                                     args: list[str], message: str) -> None:
    """These printed all cards but the last, nothing, or a traceback-worded error after the summary."""
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", args[0], "--out", str(discovered), *args[1:]])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    last_line = captured.err.rstrip("\n").splitlines()[-1]
    assert message in last_line and "Traceback" not in captured.err and captured.out == ""


def test_edit_applies_a_persons_flags_file(discovered: Path, tmp_path: Path) -> None:
    features = json.loads((discovered / "features.json").read_text())
    first = features["circuit"][0]
    flags = tmp_path / "flags.yaml"
    flags.write_text(
        "policy: Reviewed by hand\n"
        f"flags:\n  - {{site: {first['site']}, feature: {first['feature']}, state: spurious, "
        "rationale: test, reviewer: ana}\n"
    )
    assert main(["-q", "edit", "--out", str(discovered), "--flags", str(flags)]) == 0
    report = json.loads((discovered / "report.json").read_text())
    assert report["flags"][0]["who"] == "ana" and report["flag_policy"]["statement"] == "Reviewed by hand"


@pytest.mark.parametrize(
    ("flags_text", "message"),
    [
        ("flags: []\n", "No feature is flagged spurious"),
        ("flags:\n  - {site: blocks.0.out, feature: 999999}\n", "Feature 999999 does not exist at site blocks.0.out"),
        ("flags:\n  - {site: blocks.7.out, feature: 1}\n", "names site 'blocks.7.out'"),
        ("flags:\n  - {site: blocks.0.out, feature: -1}\n", "greater than or equal to 0"),
    ],
)
def test_edit_refuses_bad_flags(discovered: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                flags_text: str, message: str) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text(flags_text)
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "edit", "--out", str(discovered), "--flags", str(flags)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_edit_refuses_a_run_whose_base_model_changed(tiny: dict[str, Path], discovered: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(discovered, copy)
    config = json.loads((copy / "models" / "original" / "config.json").read_text())
    config["base_model"]["weights_sha256"] = "0" * 64
    (copy / "models" / "original" / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        main(["-q", "edit", "--out", str(copy), "--flags", "auto"])
    assert "has changed since this classifier was saved" in capsys.readouterr().err


def test_serve_refuses_to_start_without_tokens(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("EDITING_SERVICE_API_TOKENS", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "EDITING_SERVICE_API_TOKENS is not set" in err and "Traceback" not in err


def test_run_writes_the_circuit_graph_and_the_report_draws_the_flagged_part(
    discovered: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
) -> None:
    from editing_service.circuit.graph import read_circuit

    graph = read_circuit(discovered / "circuit.json")
    features = json.loads((discovered / "features.json").read_text())
    cards = {c["id"]: c for c in features["cards"]}
    shared = [n for n in graph.nodes if n.id in cards]
    assert shared and all(n.label == cards[n.id]["label"] and n.score == pytest.approx(cards[n.id]["score"])
                          for n in shared)
    assert graph.faithfulness is not None and graph.faithfulness.points[-1].faithfulness == pytest.approx(1, abs=1e-5)
    assert graph.head_lens is not None and [r.site for r in graph.head_lens.sites] == graph.sites

    report = json.loads((discovered / "report.json").read_text())
    flagged = report["flagged_circuit"]
    flagged_ids = {f"{f['site']}/{f['feature']}" for f in report["flags"]}  # auto: every flag is spurious
    assert set(flagged["set"]["node_ids"]) == flagged_ids
    assert flagged["set"]["completeness"] is not None
    html = (discovered / "report.html").read_text()
    assert "Flagged features in the circuit" in html
    if flagged["svg"] is not None:
        assert flagged["svg"].startswith("<svg") and flagged["svg"] in html

    drawing = tmp_path / "circuit.svg"
    assert main(["circuit", "--out", str(discovered), "--svg", str(drawing), "--max-nodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "faithfulness" in out and "head lens" in out and drawing.read_text().lstrip().startswith("<?xml")


def test_edit_out_with_the_thresholds_and_no_erasure_leaves_the_discovery_report_alone(discovered: Path,
                                                                                        tmp_path: Path) -> None:
    before = (discovered / "report.json").read_text()
    out = tmp_path / "edit_thresholds"
    assert main(["-q", "edit", "--out", str(discovered), "--flags", "auto:lexicon", "--edit-out", str(out),
                 "--served-form", "jumprelu", "--no-erase-at-edited-sites"]) == 0
    assert (discovered / "report.json").read_text() == before
    report = json.loads((out / "report.json").read_text())
    # The default SAEs (BatchTopK) are served as they are, whatever --served-form says.
    assert report["edit"]["served_form"] == "exact" and report["edit"]["erased_at"] == []
    assert {f["source"] for f in report["flags"]} == {"lexicon"}


def test_the_default_edit_is_served_exactly_and_erases_at_the_edited_sites(discovered: Path) -> None:
    """A spec with a protected attribute gets the erasers without asking; the default BatchTopK SAEs are
    served as the JumpReLU SAEs they are, so the served firings are the SAE's own."""
    import editing_service

    out = discovered
    report = json.loads((out / "report.json").read_text())
    assert report["sae"]["architecture"] == "batchtopk"
    flagged_sites = sorted({f["site"] for f in report["flags"]})
    assert report["edit"]["served_form"] == "exact" and report["edit"]["erased_at"] == flagged_sites
    assert sorted(report["edit"]["served_agreement"]) == flagged_sites
    for stats in report["edit"]["served_agreement"].values():
        assert stats["precision"] == 1.0 and stats["recall"] == 1.0 and stats["n_tokens"] > 0
    edited = editing_service.load_model(out / "models" / "edited")
    kinds = [type(m).__name__ for m in edited.interventions]
    assert kinds == ["FeatureAblation"] * len(flagged_sites) + ["ConceptErasure"] * len(flagged_sites)
    assert not any(m.gated for m in edited.interventions if type(m).__name__ == "FeatureAblation")


def test_a_topk_run_serves_the_gate_by_default_and_thresholds_on_request(tiny: dict[str, Path]) -> None:
    import editing_service

    out = tiny["root"] / "run_topk"
    assert main(["-q", "run", "--spec", str(tiny["spec"]), "--out", str(out), "--model", str(tiny["model"]),
                 "--architecture", "topk", "--d-sae", "64", "--k", "4", "--epochs", "5",
                 "--attribution-examples", "16", "--no-circuit-graph", "--rows", "oracle"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["edit"]["served_form"] == "gate"
    edited = editing_service.load_model(out / "models" / "edited")
    assert all(m.gated for m in edited.interventions if type(m).__name__ == "FeatureAblation")
    thresholds = tiny["root"] / "edit_topk_thresholds"
    assert main(["-q", "edit", "--out", str(out), "--flags", "auto", "--edit-out", str(thresholds),
                 "--served-form", "jumprelu", "--rows", "oracle"]) == 0
    assert json.loads((thresholds / "report.json").read_text())["edit"]["served_form"] == "jumprelu"
    edited = editing_service.load_model(thresholds / "models" / "edited")
    assert not any(m.gated for m in edited.interventions if type(m).__name__ == "FeatureAblation")


def test_run_on_the_embedding_site_with_every_suggestion_kind(tiny: dict[str, Path]) -> None:
    out = tiny["root"] / "run_embed"
    code = main(["-q", "run", "--spec", str(tiny["spec"]), "--out", str(out), "--model", str(tiny["model"]),
                 "--sites", "embeddings.out", "blocks.1.out", "--d-sae", "64", "--k", "4", "--epochs", "5",
                 "--attribution-examples", "16", "--circuit-top-k", "20", "--flags", "auto:all",
                 "--no-circuit-graph"])
    assert code == 0
    assert not (out / "circuit.json").exists() and (out / "features.json").is_file()
    assert sorted(p.name for p in (out / "saes").iterdir() if p.is_dir()) == ["blocks.1.out", "embeddings.out"]
    features = json.loads((out / "features.json").read_text())
    assert {c["site"] for c in features["circuit"]} == {"embeddings.out", "blocks.1.out"}
    report = json.loads((out / "report.json").read_text())
    kinds = {s["kind"] for s in features["suggestions"]}
    assert set(report["flag_policy"]["sources"]) == kinds


def test_an_edit_with_a_budget_curve_logs_each_points_passes(discovered: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="editing_service.progress")
    assert main(["edit", "--out", str(discovered), "--flags", "auto", "--edit-out", str(tmp_path / "budget"),
                 "--rows", "oracle", "--budget", "1"]) == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "editing_service.progress"]
    for step in ("budget:1:eval", "budget:1:retrain"):
        assert f"{step}: started" in logged
        assert any(m.startswith(f"{step}: done in ") for m in logged)


def test_an_edit_turns_off_the_budget_curve_its_run_stored(discovered: Path, tmp_path: Path) -> None:
    """`edit` inherits the run's settings; `--no-budget` must still be able to drop a stored curve."""
    stored = json.loads((discovered / "report.json").read_text())
    assert stored["budget_curve"] is not None
    out = tmp_path / "no_curve"
    assert main(["-q", "edit", "--out", str(discovered), "--flags", "auto", "--edit-out", str(out),
                 "--rows", "--no-budget"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["budget_curve"] is None
    assert [row["name"] for row in report["rows"]] == ["original", "shift", "shift_retrained"]


def test_the_budget_options_exclude_each_other(discovered: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "edit", "--out", str(discovered), "--flags", "auto", "--budget", "2", "--no-budget"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_edit_help_says_unset_options_come_from_the_run(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["edit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: the run's rows)" in help_text and "default: the run's sizes" in help_text
    assert "served (default: the run's)" in help_text and "site (default: the run's setting)" in help_text


def _files(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.rglob("*")}


@pytest.mark.parametrize("inside", ["saes", "saes/blocks.0.out", "models/edited", "activations", "seeds/seed-9"])
def test_an_edit_folder_within_the_runs_own_folders_is_refused_before_any_work(
    discovered: Path, capsys: pytest.CaptureFixture, inside: str
) -> None:
    """An edit written into saes/ used to be read back as an SAE, and every later edit of the run failed."""
    before = _files(discovered)
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "edit", "--out", str(discovered), "--flags", "auto", "--edit-out", str(discovered / inside),
              "--rows", "--no-budget"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"is within the {inside.split('/')[0]}/ folder of the discovered run" in err and "Traceback" not in err
    assert _files(discovered) == before


@pytest.mark.parametrize("command", ["run", "discover", "saes"])
def test_a_run_within_another_runs_saes_folder_is_refused_before_any_work(
    discovered: Path, tiny: dict[str, Path], capsys: pytest.CaptureFixture, command: str
) -> None:
    before = _files(discovered)
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", command, "--spec", str(tiny["spec"]), "--model", str(tiny["model"]),
              "--out", str(discovered / "saes" / "nested")])
    assert exit_info.value.code == 2
    assert "is within the saes/ folder of the discovered run" in capsys.readouterr().err
    assert _files(discovered) == before


def test_an_edit_folder_that_is_another_discovered_run_is_refused(discovered: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "other_run"
    other.mkdir()
    shutil.copy(discovered / "run.json", other / "run.json")
    (other / "report.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "edit", "--out", str(discovered), "--flags", "auto", "--edit-out", str(other), "--rows"])
    assert exit_info.value.code == 2
    assert "is the discovered run" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["report.json", "run.json"]
    assert (other / "report.json").read_text() == "{}"


def test_editing_a_folder_that_is_not_a_discovered_run_names_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "edit", "--out", str(tmp_path / "nowhere"), "--flags", "auto"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nowhere has no discovery results (features.json missing): run `discover` first." in err
    assert "Errno" not in err


def test_run_and_discover_leave_every_setting_they_do_not_name_to_the_settings_defaults() -> None:
    """An option with its own default would override the settings model's, the one source of defaults."""
    import argparse

    from editing_service.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    for name in ("run", "discover", "saes"):
        for action in commands.choices[name]._actions:  # noqa: SLF001
            if action.dest in ("help", "flags") or isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
                continue  # --flags names a flag policy, not a setting
            assert action.default is None, (name, action.option_strings, action.default)


@pytest.mark.parametrize(("option", "model", "field"), [
    ("--architecture", "SAESettings", "architecture"), ("--d-sae", "SAESettings", "d_sae"), ("--k", "SAESettings", "k"),
    ("--epochs", "SAESettings", "n_epochs"), ("--sae-batch-size", "SAESettings", "batch_size"),
    ("--probe-layer", "ModelSettings", "probe_layer"), ("--max-length", "ModelSettings", "max_length"),
    ("--device", "ModelSettings", "device"), ("--dtype", "ModelSettings", "dtype"),
    ("--attribution", "AttributionSettings", "method"), ("--attribution-examples", "AttributionSettings", "n_examples"),
    ("--circuit-top-k", "CircuitSettings", "top_k"), ("--lexicon", "SuggestionSettings", "lexicon"),
    ("--ablation", "EditSettings", "mode"), ("--seeds", "RunSettings", "seeds"),
    ("--cache-dtype", "CacheSettings", "cache_dtype"), ("--cache-budget-gb", "CacheSettings", "cache_budget_gb"),
])
def test_the_run_options_help_states_the_settings_default(option: str, model: str, field: str) -> None:
    """The settings model is the one source of defaults; the help that names them must follow it."""
    import argparse

    from editing_service import settings
    from editing_service.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    action = next(a for a in commands.choices["run"]._actions if option in a.option_strings)  # noqa: SLF001
    default = getattr(settings, model).model_fields[field].default
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    assert f"(default: {shown})" in " ".join(action.help.split())
