"""Where an edit may write, beside the discovered run it edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from editing_service.artifacts import ArtifactDir, check_edit_out


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    (root / "saes").mkdir(parents=True)
    ArtifactDir(root).run_config.write_text("{}")
    return root


@pytest.mark.parametrize("edit_out", [".", "edits/lexicon", "../elsewhere", "report_folder"])
def test_the_run_itself_or_a_folder_of_its_own_is_allowed(run: Path, edit_out: str) -> None:
    check_edit_out(run, run / edit_out)


@pytest.mark.parametrize(("edit_out", "folder"), [("saes", "saes"), ("activations/train", "activations"),
                                                  ("models", "models"), ("seeds/seed-1/x", "seeds")])
def test_a_folder_within_the_runs_own_folders_is_refused(run: Path, edit_out: str, folder: str) -> None:
    with pytest.raises(ValueError, match=f"is within the {folder}/ folder of the discovered run {run.resolve()}"):
        check_edit_out(run, run / edit_out)


def test_a_seed_runs_edit_may_not_overwrite_the_run_that_holds_it(run: Path) -> None:
    seed = ArtifactDir(run).seed_run(1)
    seed.mkdir(parents=True)
    ArtifactDir(seed).run_config.write_text("{}")
    check_edit_out(seed, seed)
    with pytest.raises(ValueError, match="is the discovered run"):
        check_edit_out(seed, run)


def test_a_missing_file_of_a_run_is_named_with_the_run(run: Path) -> None:
    artifacts = ArtifactDir(run)
    assert artifacts.require(artifacts.run_config) == artifacts.run_config
    with pytest.raises(FileNotFoundError, match=r"run has no discovery results \(features.json missing\)"):
        artifacts.require(artifacts.features)
