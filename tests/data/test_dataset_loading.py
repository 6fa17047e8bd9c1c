"""Loading subsets from every source kind and split kind: row counts, row contents, order, determinism."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from editing_service.data import (
    DatasetSpec,
    TextSplit,
    clear_cache,
    load_role,
    load_subset,
    stereotype_labels,
)
from editing_service.data import load as load_module

# Rows per subset of the tiny dataset (see conftest.CELL_COUNTS).
TINY_SIZES = {"train_biased": 12, "validate": 8, "test": 8, "train_oracle": 8}


def cells(split: TextSplit) -> Counter:
    names = np.asarray(split.label_names)[split.labels]
    return Counter(zip(names.tolist(), split.groups["gender"].tolist(), strict=True))


def assert_rows_match(split: TextSplit, frame: pd.DataFrame) -> None:
    """Every row of `split` is a row of `frame` with the same label and group, and texts are unique."""
    by_text = frame.set_index("text")
    assert len(set(split.texts)) == len(split)
    for text, label, group in zip(split.texts, split.labels, split.groups["gender"], strict=True):
        row = by_text.loc[text]
        assert split.label_names[label] == row["occupation"]
        assert group == row["gender"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_sources_load_every_subset(
    tmp_path: Path, suffix: str, tiny_frame, spec_dict, write_frame
) -> None:
    write_frame(tiny_frame, tmp_path / f"tiny{suffix}")
    spec = DatasetSpec.from_dict(spec_dict(f"tiny{suffix}"), base_dir=tmp_path)
    for name, size in TINY_SIZES.items():
        split = load_subset(spec, name)
        assert (split.name, len(split), split.label_names) == (name, size, ["nurse", "surgeon"])
        assert_rows_match(split, tiny_frame)
        assert split.texts == list(split.dataset["text"])
    assert cells(load_role(spec, "train")) == {("surgeon", "M"): 6, ("nurse", "F"): 6}
    assert set(cells(load_role(spec, "oracle")).values()) == {2}
    assert len(cells(load_role(spec, "oracle"))) == 4


def test_subset_rows_keep_source_order(tiny_csv: Path, spec_dict) -> None:
    spec = DatasetSpec.from_dict(spec_dict(str(tiny_csv)))
    frame = pd.read_csv(tiny_csv)
    split = load_subset(spec, "validate")
    assert split.texts == frame.loc[frame["split"] == "validate", "text"].tolist()


def test_text_split_types(tiny_csv: Path, spec_dict) -> None:
    split = load_subset(DatasetSpec.from_dict(spec_dict(str(tiny_csv))), "test")
    assert split.labels.dtype == np.int64
    assert split.groups["gender"].dtype.kind == "U"
    assert isinstance(split.dataset, datasets.Dataset)
    assert all(isinstance(t, str) for t in split.texts)


def test_text_split_refuses_mismatched_lengths() -> None:
    dataset = datasets.Dataset.from_dict({"text": ["a", "b"]})
    with pytest.raises(ValueError) as err:
        TextSplit(
            name="x",
            texts=["a", "b"],
            labels=np.zeros(3, dtype=np.int64),
            groups={},
            label_names=["p", "q"],
            dataset=dataset,
        )
    assert str(err.value) == load_module.TEXTSPLIT_LENGTHS.format(name="x", what="labels", got=3, n=2)


def test_saved_dataset_with_column_splits(tmp_path: Path, tiny_frame, spec_dict) -> None:
    datasets.Dataset.from_pandas(tiny_frame).save_to_disk(str(tmp_path / "saved"))
    spec = DatasetSpec.from_dict(spec_dict(source={"kind": "disk", "path": "saved"}), base_dir=tmp_path)
    for name, size in TINY_SIZES.items():
        split = load_subset(spec, name)
        assert len(split) == size
        assert_rows_match(split, tiny_frame)


def test_saved_dataset_dict_with_source_splits(tmp_path: Path, tiny_frame, spec_dict) -> None:
    parts = {
        own: tiny_frame[tiny_frame["split"] == ours].drop(columns="split").reset_index(drop=True)
        for ours, own in {"train": "train", "validate": "dev", "test": "test"}.items()
    }
    datasets.DatasetDict({k: datasets.Dataset.from_pandas(v) for k, v in parts.items()}).save_to_disk(
        str(tmp_path / "saved")
    )
    data = spec_dict(
        source={"kind": "disk", "path": str(tmp_path / "saved")},
        splits={"kind": "source", "values": {"train": "train", "validate": "dev", "test": "test"}},
    )
    spec = DatasetSpec.from_dict(data)
    for name, size in TINY_SIZES.items():
        split = load_subset(spec, name)
        assert len(split) == size
        assert_rows_match(split, tiny_frame)
    assert load_subset(spec, "validate").texts == parts["dev"]["text"].tolist()


def test_saved_dataset_dict_read_as_one_table(tmp_path: Path, tiny_frame, spec_dict) -> None:
    datasets.DatasetDict({"all": datasets.Dataset.from_pandas(tiny_frame)}).save_to_disk(
        str(tmp_path / "saved")
    )
    spec = DatasetSpec.from_dict(
        spec_dict(source={"kind": "disk", "path": str(tmp_path / "saved"), "split": "all"})
    )
    assert len(load_subset(spec, "train_biased")) == TINY_SIZES["train_biased"]


def test_label_values_map_raw_integers(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame.assign(
        occupation=tiny_frame["occupation"].map({"nurse": 13, "surgeon": 21}),
        gender=tiny_frame["gender"].map({"M": 0, "F": 1}),
    )
    write_frame(frame, tmp_path / "ints.parquet")
    data = spec_dict(str(tmp_path / "ints.parquet"), label_values={"nurse": 13, "surgeon": 21})
    data["protected"][0]["values"] = {"F": 1, "M": 0}
    spec = DatasetSpec.from_dict(data)
    assert cells(load_role(spec, "train")) == {("surgeon", "M"): 6, ("nurse", "F"): 6}


def test_other_labels_drop_leaves_undeclared_labels_out(
    tmp_path: Path, tiny_frame, spec_dict, write_frame
) -> None:
    extra = pd.DataFrame(
        {
            "split": ["train", "test"],
            "text": ["a doctor bio", "another doctor bio"],
            "occupation": ["doctor", "doctor"],
            "gender": ["F", "Q"],
        }
    )
    write_frame(pd.concat([tiny_frame, extra], ignore_index=True), tmp_path / "more.csv")
    spec = DatasetSpec.from_dict(spec_dict(str(tmp_path / "more.csv"), other_labels="drop"))
    test = load_subset(spec, "test")
    assert len(test) == TINY_SIZES["test"]
    assert "another doctor bio" not in test.texts
    assert len(test.dataset) == len(test)


def test_per_cell_min_balances_on_the_smallest_cell(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(str(tiny_csv))
    data["subsets"]["train_oracle"]["per_cell"] = "min"
    split = load_subset(DatasetSpec.from_dict(data), "train_oracle")
    assert cells(split) == {(o, g): 3 for o in ("nurse", "surgeon") for g in ("F", "M")}


def test_per_cell_with_cells_draws_from_listed_cells_only(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(str(tiny_csv))
    data["subsets"]["train_biased"]["per_cell"] = 4
    split = load_subset(DatasetSpec.from_dict(data), "train_biased")
    assert cells(split) == {("surgeon", "M"): 4, ("nurse", "F"): 4}


def test_draws_depend_on_the_seed_only(tiny_csv: Path, spec_dict) -> None:
    def oracle_texts(seed: int) -> list[str]:
        data = spec_dict(str(tiny_csv))
        data["subsets"]["train_oracle"].update(seed=seed)
        clear_cache()
        return load_subset(DatasetSpec.from_dict(data), "train_oracle").texts

    assert oracle_texts(0) == oracle_texts(0)
    assert any(oracle_texts(0) != oracle_texts(seed) for seed in (1, 2, 3))


def test_max_rows_caps_a_subset_deterministically(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(str(tiny_csv))
    data["subsets"]["validate"].update(max_rows=5, seed=3)
    spec = DatasetSpec.from_dict(data)
    first = load_subset(spec, "validate")
    clear_cache()
    again = load_subset(spec, "validate")
    assert len(first) == 5
    assert first.texts == again.texts
    full = spec_dict(str(tiny_csv))
    assert set(first.texts) <= set(load_subset(DatasetSpec.from_dict(full), "validate").texts)


RATIOS = {"train": 0.6, "validate": 0.2, "test": 0.2}


def ratio_spec(path: Path, spec_dict, seed: int = 7) -> DatasetSpec:
    subsets = {"train": {"split": "train"}, "validate": {"split": "validate"}, "test": {"split": "test"}}
    data = spec_dict(
        str(path),
        splits={"kind": "ratio", "ratios": RATIOS, "seed": seed},
        subsets=subsets,
        roles={"train": "train", "validate": "validate", "evaluate": "test"},
    )
    return DatasetSpec.from_dict(data)


def test_ratio_splits_are_disjoint_cover_all_rows_and_are_deterministic(tiny_csv: Path, spec_dict) -> None:
    n = len(pd.read_csv(tiny_csv))
    spec = ratio_spec(tiny_csv, spec_dict)
    first = {name: load_subset(spec, name).texts for name in RATIOS}
    assert [len(first[name]) for name in RATIOS] == [20, 7, 7]  # cuts at round(34 * [0.6, 0.8])
    assert sum(len(t) for t in first.values()) == n
    assert len(set().union(*map(set, first.values()))) == n
    clear_cache()
    assert {name: load_subset(spec, name).texts for name in RATIOS} == first
    clear_cache()
    other_seed = ratio_spec(tiny_csv, spec_dict, seed=8)
    assert load_subset(other_seed, "train").texts != first["train"]


def test_ratio_split_assignment_depends_on_row_count_and_seed() -> None:
    from editing_service.data import RatioSplits

    splits = RatioSplits(ratios={"a": 0.5, "b": 0.3, "c": 0.2}, seed=0)
    parts = splits.assign(101)
    assert [len(p) for p in parts.values()] == [50, 31, 20]  # cuts at round(101 * [0.5, 0.8])
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(101))
    again = splits.assign(101)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_source_is_read_once_for_all_subsets(
    tiny_csv: Path, spec_dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = []
    real = load_module.read_source

    def counting(*args, **kwargs):
        reads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(load_module, "read_source", counting)
    spec = DatasetSpec.from_dict(spec_dict(str(tiny_csv)))
    for name in TINY_SIZES:
        load_subset(spec, name)
    assert len(reads) == 1
    stat = tiny_csv.stat()
    os.utime(tiny_csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the file "changed"
    load_subset(spec, "test")
    assert len(reads) == 2


def test_stereotype_labels_follow_the_group(tiny_csv: Path, spec_dict) -> None:
    spec = DatasetSpec.from_dict(spec_dict(str(tiny_csv)))
    split = load_subset(spec, "test")
    expected = np.where(split.groups["gender"] == "F", 0, 1)
    np.testing.assert_array_equal(stereotype_labels(spec, split), expected)
    np.testing.assert_array_equal(stereotype_labels(spec, split, "gender"), expected)


def test_stereotype_labels_need_a_stereotype(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(str(tiny_csv))
    del data["protected"][0]["stereotype"]
    spec = DatasetSpec.from_dict(data)
    with pytest.raises(ValueError) as err:
        stereotype_labels(spec, load_subset(spec, "test"))
    assert str(err.value) == load_module.NO_STEREOTYPE.format(attribute="gender", name="tiny")


def test_class_label_columns_match_by_name_unless_values_are_given(
    tmp_path: Path, tiny_frame, spec_dict
) -> None:
    features = datasets.Features(
        {
            "split": datasets.Value("string"),
            "text": datasets.Value("string"),
            "occupation": datasets.ClassLabel(names=["surgeon", "nurse"]),
            "gender": datasets.ClassLabel(names=["M", "F"]),
        }
    )
    datasets.Dataset.from_pandas(tiny_frame, features=features).save_to_disk(str(tmp_path / "saved"))
    by_name = DatasetSpec.from_dict(spec_dict(source={"kind": "disk", "path": str(tmp_path / "saved")}))
    assert cells(load_role(by_name, "train")) == {("surgeon", "M"): 6, ("nurse", "F"): 6}
    data = spec_dict(
        source={"kind": "disk", "path": str(tmp_path / "saved")}, label_values={"nurse": 1, "surgeon": 0}
    )
    data["protected"][0]["values"] = {"F": 1, "M": 0}
    by_value = DatasetSpec.from_dict(data)
    assert cells(load_role(by_value, "train")) == {("surgeon", "M"): 6, ("nurse", "F"): 6}


def test_hub_source_read_as_one_table_with_column_splits(tiny_frame, spec_dict, monkeypatch) -> None:
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return datasets.Dataset.from_pandas(tiny_frame)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    source = {"kind": "hub", "path": "org/bios", "name": "clean", "revision": "abc123", "split": "all"}
    spec = DatasetSpec.from_dict(spec_dict(source=source))
    assert {name: len(load_subset(spec, name)) for name in TINY_SIZES} == TINY_SIZES
    assert calls == [("org/bios", "clean", {"revision": "abc123", "split": "all"})]
