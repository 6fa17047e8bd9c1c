"""Every load-time error, with its exact message: what was wrong, and where."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

from editing_service.data import DatasetSpec, load_subset
from editing_service.data import select as select_module
from editing_service.data import sources as sources_module
from editing_service.data import table as table_module
from editing_service.data.values import describe_values

COLUMNS = ["split", "text", "occupation", "gender"]


def load_error(spec: DatasetSpec, subset: str, kind: type[Exception] = ValueError) -> str:
    with pytest.raises(kind) as err:
        load_subset(spec, subset)
    return str(err.value)


def spec_for(path: Path, spec_dict, **overrides) -> DatasetSpec:
    return DatasetSpec.from_dict(spec_dict(str(path), **overrides))


def test_missing_data_file(tmp_path: Path, spec_dict) -> None:
    path = tmp_path / "absent.csv"
    message = load_error(spec_for(path, spec_dict), "test", FileNotFoundError)
    assert message == sources_module.DATA_FILE_NOT_FOUND.format(path=path, name="tiny")


@pytest.mark.parametrize(("name", "content", "cause"), [
    ("empty.csv", b"", "EmptyDataError: No columns to parse from file"),
    ("latin1.csv", "split,text,occupation,gender\ntrain,Infirmi\xe8re,nurse,F\n".encode("latin-1"), "Invalid UTF8"),
    ("broken.jsonl", b'{"text": "a"\n{oops\n', "ValueError"),
    ("noise.parquet", b"not parquet", "ArrowInvalid: Parquet magic bytes not found"),
])
def test_unreadable_data_file(tmp_path: Path, spec_dict, name: str, content: bytes, cause: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    message = load_error(spec_for(path, spec_dict), "test")
    fmt = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}[name.rsplit(".", 1)[1]]
    assert message.startswith(sources_module.UNREADABLE_FILE.split("{cause}")[0].format(path=path, name="tiny", fmt=fmt))
    assert cause in message


def test_missing_saved_dataset_folder(tmp_path: Path, spec_dict) -> None:
    spec = DatasetSpec.from_dict(spec_dict(source={"kind": "disk", "path": str(tmp_path / "absent")}))
    message = load_error(spec, "test", FileNotFoundError)
    assert message == sources_module.DATA_FOLDER_NOT_FOUND.format(path=tmp_path / "absent", name="tiny")


def test_sha256_mismatch(tiny_csv: Path, spec_dict) -> None:
    expected = "0" * 64
    spec = spec_for(tiny_csv, spec_dict, source={"kind": "file", "path": str(tiny_csv), "sha256": expected})
    actual = sources_module.file_sha256(tiny_csv)
    assert load_error(spec, "test") == sources_module.SHA256_MISMATCH.format(
        path=tiny_csv, name="tiny", actual=actual, expected=expected
    )


def test_matching_sha256_loads(tiny_csv: Path, spec_dict) -> None:
    digest = sources_module.file_sha256(tiny_csv).upper()  # any case is accepted
    spec = spec_for(tiny_csv, spec_dict, source={"kind": "file", "path": str(tiny_csv), "sha256": digest})
    assert len(load_subset(spec, "test")) == 8


@pytest.mark.parametrize(
    ("overrides", "role", "column"),
    [
        ({"text_column": "bio"}, "text", "bio"),
        ({"label_column": "job"}, "label", "job"),
        (
            {"splits": {"kind": "column", "column": "part", "names": ["train", "validate", "test"]}},
            "split",
            "part",
        ),
    ],
)
def test_missing_column(tiny_csv: Path, spec_dict, overrides, role, column) -> None:
    spec = spec_for(tiny_csv, spec_dict, **overrides)
    assert load_error(spec, "test") == table_module.MISSING_COLUMN.format(
        name="tiny", role=role, column=column, available=COLUMNS
    )


def test_missing_protected_column(tiny_csv: Path, spec_dict) -> None:
    spec = spec_for(tiny_csv, spec_dict, protected=[{"name": "sex", "column": "sex", "groups": ["F", "M"]}])
    assert load_error(spec, "test") == table_module.MISSING_COLUMN.format(
        name="tiny", role="protected attribute 'sex'", column="sex", available=COLUMNS
    )


def test_unknown_label_values(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame.copy()
    test_rows = frame.index[frame["split"] == "test"]
    frame.loc[test_rows[:3], "occupation"] = ["doctor", "doctor", "pilot"]
    write_frame(frame, tmp_path / "d.csv")
    spec = spec_for(tmp_path / "d.csv", spec_dict)
    assert load_error(spec, "test") == table_module.UNKNOWN_LABEL_VALUES.format(
        column="occupation",
        name="tiny",
        split="test",
        values="['doctor', 'pilot']",
        count=3,
        declared=["nurse", "surgeon"],
    )
    assert len(load_subset(spec, "validate")) == 8  # other splits are unaffected


def test_no_declared_label_left_after_dropping(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame.copy()
    frame.loc[frame["split"] == "test", "occupation"] = "doctor"
    write_frame(frame, tmp_path / "d.csv")
    spec = spec_for(tmp_path / "d.csv", spec_dict, other_labels="drop")
    assert load_error(spec, "test") == table_module.NO_DECLARED_LABELS.format(
        split="test", name="tiny", declared=["nurse", "surgeon"]
    )


def test_unknown_group_values(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame.copy()
    test_rows = frame.index[frame["split"] == "test"]
    frame.loc[test_rows[:2], "gender"] = ["X", None]
    write_frame(frame, tmp_path / "g.csv")
    spec = spec_for(tmp_path / "g.csv", spec_dict)
    assert load_error(spec, "test") == table_module.UNKNOWN_GROUP_VALUES.format(
        column="gender",
        name="tiny",
        attribute="gender",
        split="test",
        values=describe_values(["X", None]),
        count=2,
        declared=["F", "M"],
    )


def test_protected_column_with_a_single_value(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame.assign(gender="F")
    write_frame(frame, tmp_path / "f.csv")
    spec = spec_for(tmp_path / "f.csv", spec_dict)
    assert load_error(spec, "validate") == table_module.SINGLE_GROUP.format(
        column="gender", name="tiny", group="F", split="validate"
    )


def test_empty_split(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(
        str(tiny_csv),
        splits={"kind": "column", "column": "split", "names": ["train", "validate", "test", "holdout"]},
    )
    data["subsets"]["holdout"] = {"split": "holdout"}
    spec = DatasetSpec.from_dict(data)
    assert load_error(spec, "holdout") == table_module.EMPTY_SPLIT.format(split="holdout", name="tiny")


def test_empty_cell(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame[
        ~(
            (tiny_frame["split"] == "train")
            & (tiny_frame["occupation"] == "surgeon")
            & (tiny_frame["gender"] == "F")
        )
    ]
    write_frame(frame, tmp_path / "e.csv")
    spec = spec_for(tmp_path / "e.csv", spec_dict)
    assert len(load_subset(spec, "train_biased")) == 12  # its cells are all there
    assert load_error(spec, "train_oracle") == select_module.EMPTY_CELL.format(
        subset="train_oracle", name="tiny", label="surgeon", attribute="gender", group="F", split="train"
    )


def test_listed_empty_cell(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(str(tiny_csv))
    data["subsets"]["only_validate_male_nurses"] = {
        "split": "validate",
        "cells": [["nurse", "M"]],
        "max_rows": 1,
    }
    spec = DatasetSpec.from_dict(data)
    assert len(load_subset(spec, "only_validate_male_nurses")) == 1
    # the CSV's validate split has 2 male nurses; drop them and the cell is empty
    frame = pd.read_csv(tiny_csv)
    frame = frame[
        ~((frame["split"] == "validate") & (frame["occupation"] == "nurse") & (frame["gender"] == "M"))
    ]
    frame.to_csv(tiny_csv, index=False)
    assert load_error(spec, "only_validate_male_nurses") == select_module.EMPTY_CELL.format(
        subset="only_validate_male_nurses",
        name="tiny",
        label="nurse",
        attribute="gender",
        group="M",
        split="validate",
    )


def test_per_cell_larger_than_a_cell(tiny_csv: Path, spec_dict) -> None:
    data = spec_dict(str(tiny_csv))
    data["subsets"]["train_oracle"]["per_cell"] = 4
    spec = DatasetSpec.from_dict(data)
    assert load_error(spec, "train_oracle") == select_module.CELL_TOO_SMALL.format(
        subset="train_oracle",
        name="tiny",
        per_cell=4,
        label="nurse",
        attribute="gender",
        group="M",
        count=3,
        split="train",
    )


def test_non_text_values_in_csv(tmp_path: Path, tiny_frame, spec_dict, write_frame) -> None:
    frame = tiny_frame.copy()
    train_rows = frame.index[frame["split"] == "train"]
    frame.loc[train_rows[[1, 4]], "text"] = None  # an empty CSV cell
    frame.loc[train_rows[6], "text"] = "   "
    write_frame(frame, tmp_path / "t.csv")
    spec = spec_for(tmp_path / "t.csv", spec_dict)
    assert load_error(spec, "train_biased") == table_module.NON_TEXT_VALUES.format(
        column="text", name="tiny", count=3, split="train", row=int(train_rows[1])
    )
    assert len(load_subset(spec, "test")) == 8


def test_non_text_values_in_jsonl(tmp_path: Path, tiny_frame, spec_dict) -> None:
    records = tiny_frame.to_dict(orient="records")
    test_rows = [i for i, r in enumerate(records) if r["split"] == "test"]
    for i, bad in zip(test_rows[2:5], [42, None, ""], strict=True):
        records[i]["text"] = bad
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    spec = spec_for(path, spec_dict)
    assert load_error(spec, "test") == table_module.NON_TEXT_VALUES.format(
        column="text", name="tiny", count=3, split="test", row=test_rows[2]
    )


def test_saved_dataset_without_the_named_split(tmp_path: Path, tiny_frame, spec_dict) -> None:
    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(tiny_frame)}).save_to_disk(
        str(tmp_path / "s")
    )
    data = spec_dict(
        source={"kind": "disk", "path": str(tmp_path / "s")},
        splits={"kind": "source", "names": ["train", "validate", "test"]},
    )
    spec = DatasetSpec.from_dict(data)
    assert load_error(spec, "test") == sources_module.NO_SUCH_SAVED_SPLIT.format(
        path=tmp_path / "s", name="tiny", split="test", available=["train"]
    )


def test_saved_dataset_dict_needs_a_split_for_column_splits(tmp_path: Path, tiny_frame, spec_dict) -> None:
    datasets.DatasetDict({"a": datasets.Dataset.from_pandas(tiny_frame)}).save_to_disk(str(tmp_path / "s"))
    spec = DatasetSpec.from_dict(spec_dict(source={"kind": "disk", "path": str(tmp_path / "s")}))
    assert load_error(spec, "test") == sources_module.SAVED_SPLIT_NEEDED.format(
        path=tmp_path / "s", name="tiny", available=["a"]
    )


def test_saved_single_dataset_has_no_source_splits(tmp_path: Path, tiny_frame, spec_dict) -> None:
    datasets.Dataset.from_pandas(tiny_frame).save_to_disk(str(tmp_path / "s"))
    data = spec_dict(
        source={"kind": "disk", "path": str(tmp_path / "s")},
        splits={"kind": "source", "names": ["train", "validate", "test"]},
    )
    spec = DatasetSpec.from_dict(data)
    assert load_error(spec, "test") == sources_module.NOT_A_DATASET_DICT.format(
        path=tmp_path / "s", name="tiny", split="test"
    )
