"""Fixtures for the dataset-spec tests: a tiny biased dataset, spec dicts, files written from them.

Test modules get these helpers as fixtures (pytest runs with --import-mode=importlib, so they cannot
import this file).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from editing_service.data import clear_cache

# (split, occupation, gender) -> rows; train is biased like the shipped data, the others balanced.
CELL_COUNTS = {
    ("train", "nurse", "F"): 6,
    ("train", "nurse", "M"): 3,
    ("train", "surgeon", "F"): 3,
    ("train", "surgeon", "M"): 6,
    ("validate", "nurse", "F"): 2,
    ("validate", "nurse", "M"): 2,
    ("validate", "surgeon", "F"): 2,
    ("validate", "surgeon", "M"): 2,
    ("test", "nurse", "F"): 2,
    ("test", "nurse", "M"): 2,
    ("test", "surgeon", "F"): 2,
    ("test", "surgeon", "M"): 2,
}


def tiny_frame() -> pd.DataFrame:
    """Rows with columns split, text, occupation, gender, interleaved so no cell is contiguous."""
    rows = [
        {
            "split": split,
            "text": f"bio {k} of a {gender} {occupation} in {split}",
            "occupation": occupation,
            "gender": gender,
        }
        for (split, occupation, gender), n in CELL_COUNTS.items()
        for k in range(n)
    ]
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def spec_dict(path: str = "tiny.csv", **overrides: Any) -> dict[str, Any]:
    """A valid spec for `tiny_frame()` written at `path`; top-level keys replaced by `overrides`."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "description": "a tiny test dataset",
        "source": {"kind": "file", "path": path},
        "splits": {"kind": "column", "column": "split", "names": ["train", "validate", "test"]},
        "text_column": "text",
        "label_column": "occupation",
        "labels": ["nurse", "surgeon"],
        "protected": [
            {
                "name": "gender",
                "column": "gender",
                "groups": ["F", "M"],
                "stereotype": {"F": "nurse", "M": "surgeon"},
            }
        ],
        "subsets": {
            "train_biased": {"split": "train", "cells": [["surgeon", "M"], ["nurse", "F"]]},
            "validate": {"split": "validate"},
            "test": {"split": "test"},
            "train_oracle": {"split": "train", "per_cell": 2, "seed": 0},
        },
        "roles": {
            "train": "train_biased",
            "validate": "validate",
            "evaluate": "test",
            "oracle": "train_oracle",
        },
    }
    spec.update(copy.deepcopy(overrides))
    return spec


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV, JSON lines or Parquet, by the suffix of `path`."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise AssertionError(f"unsupported suffix {path.suffix}")
    return path


def write_spec(folder: Path, data: dict[str, Any], name: str = "spec.yaml") -> Path:
    """Write a spec dict as YAML into `folder`."""
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(name="tiny_frame")
def tiny_frame_fixture() -> pd.DataFrame:
    """The rows of `tiny_frame()`."""
    return tiny_frame()


@pytest.fixture(name="spec_dict")
def spec_dict_fixture() -> Callable[..., dict[str, Any]]:
    """The `spec_dict(path, **overrides)` factory."""
    return spec_dict


@pytest.fixture(name="write_frame")
def write_frame_fixture() -> Callable[[pd.DataFrame, Path], Path]:
    """The `write_frame(frame, path)` helper."""
    return write_frame


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    """`tiny_frame()` as tmp_path/tiny.csv."""
    return write_frame(tiny_frame(), tmp_path / "tiny.csv")


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write `spec_dict(**overrides)` as tmp_path/spec.yaml and return its path."""

    def make(**overrides: Any) -> Path:
        return write_spec(tmp_path, spec_dict(**overrides))

    return make
