"""A tiny world for the HTTP tests: a model root with a tiny random BERT and a data root with a tiny
Bias-in-Bios-like table, with the inline spec and run settings that fit them."""

from __future__ import annotations

from pathlib import Path

from factories import make_bios_frame, make_model_folder

SPEC = {
    "name": "tiny_bios",
    "source": {"kind": "file", "path": "bios.csv"},
    "splits": {"kind": "column", "column": "split", "names": ["train", "validate", "test"]},
    "text_column": "text",
    "label_column": "occupation",
    "labels": ["nurse", "surgeon"],
    "protected": [{"name": "gender", "column": "gender", "groups": ["F", "M"],
                   "stereotype": {"F": "nurse", "M": "surgeon"}}],
    "subsets": {
        "train_biased": {"split": "train", "cells": [["surgeon", "M"], ["nurse", "F"]]},
        "validate": {"split": "validate"},
        "test": {"split": "test"},
        "train_oracle": {"split": "train", "per_cell": 6},
    },
    "roles": {"train": "train_biased", "validate": "validate", "evaluate": "test", "oracle": "train_oracle"},
}
TINY_SETTINGS = {
    "sae": {"d_sae": 64, "k": 4, "n_epochs": 5},
    "attribution": {"n_examples": 16},
    "circuit": {"top_k": 20},
    "edit": {"n_boot": 20},
}


def make_world(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "data").mkdir()
    make_model_folder(root / "models", "bert")
    make_bios_frame(12).to_csv(root / "data" / "bios.csv", index=False)
    return root


def spec_for(root: Path) -> dict:
    return {**SPEC, "source": {"kind": "file", "path": str(root / "data" / "bios.csv")}}
