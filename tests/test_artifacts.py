"""Where a run or an edit may write without clobbering a discovered run."""

from __future__ import annotations

from pathlib import Path

import pytest

from editing_service.artifacts import ArtifactDir, check_output_folder


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    (root / "saes").mkdir(parents=True)
    ArtifactDir(root).run_config.write_text("{}")
    return root


@pytest.mark.parametrize("edit_out", [".", "edits/lexicon", "../elsewhere", "report_folder"])
def test_an_edit_may_go_to_the_run_itself_or_a_folder_of_its_own(run: Path, edit_out: str) -> None:
    check_output_folder(run / edit_out, edited_run=run)


@pytest.mark.parametrize(("edit_out", "folder"), [("saes", "saes"), ("activations/train", "activations"),
                                                  ("models", "models"), ("seeds/seed-1/x", "seeds")])
def test_a_folder_within_the_runs_own_folders_is_refused(run: Path, edit_out: str, folder: str) -> None:
    for edited_run in (run, None):
        with pytest.raises(ValueError, match=f"is within the {folder}/ folder of the discovered run {run.resolve()}"):
            check_output_folder(run / edit_out, edited_run=edited_run)


@pytest.mark.parametrize("out", [".", "../next_run", "runs/inside_but_not_its_own"])
def test_a_run_may_be_written_again_in_place_or_beside_it(run: Path, out: str) -> None:
    check_output_folder(run / out)


def test_a_seed_runs_edit_may_not_overwrite_the_run_that_holds_it(run: Path) -> None:
    seed = ArtifactDir(run).seed_run(1)
    seed.mkdir(parents=True)
    ArtifactDir(seed).run_config.write_text("{}")
    check_output_folder(seed, edited_run=seed)
    with pytest.raises(ValueError, match="is the discovered run"):
        check_output_folder(run, edited_run=seed)


def test_a_missing_file_of_a_run_is_named_with_the_run(run: Path) -> None:
    artifacts = ArtifactDir(run)
    assert artifacts.require(artifacts.run_config) == artifacts.run_config
    with pytest.raises(FileNotFoundError, match=r"run has no discovery results \(features.json missing\)"):
        artifacts.require(artifacts.features)
