"""The shipped specs: both parse, the surgeon/nurse one loads with the documented cell counts, and the hub
one builds the right `datasets.load_dataset` calls."""

from __future__ import annotations

from collections import Counter

import datasets
import numpy as np
import pytest

from editing_service.data import (
    SHIPPED_SPECS_DIR,
    DatasetSpec,
    FileSource,
    HubSource,
    SourceSplits,
    list_shipped_specs,
    load_role,
    load_spec,
    load_subset,
    stereotype_labels,
)
from editing_service.data.shipped import UNKNOWN_SPEC

SURGEON_NURSE = "biasbios_surgeon_nurse"
PROFESSOR_NURSE = "bias_in_bios_professor_nurse"


def cell_counts(split) -> Counter:
    names = np.asarray(split.label_names)[split.labels]
    return Counter(zip(names.tolist(), split.groups["gender"].tolist(), strict=True))


def test_list_shipped_specs_names_both_specs() -> None:
    assert {SURGEON_NURSE, PROFESSOR_NURSE} <= set(list_shipped_specs())


def test_load_spec_by_name_and_by_path_agree() -> None:
    by_name = load_spec(SURGEON_NURSE)
    by_path = load_spec(SHIPPED_SPECS_DIR / f"{SURGEON_NURSE}.yaml")
    assert by_name == by_path


def test_load_spec_unknown_name_lists_shipped_specs() -> None:
    with pytest.raises(ValueError) as err:
        load_spec("no_such_spec")
    assert str(err.value) == UNKNOWN_SPEC.format(name="no_such_spec", available=list_shipped_specs())


def test_surgeon_nurse_spec_fields() -> None:
    spec = load_spec(SURGEON_NURSE)
    assert isinstance(spec.source, FileSource)
    assert spec.source.path == SHIPPED_SPECS_DIR / "data" / "biasbios_surgeon_nurse.csv"
    assert spec.source.sha256 == "fca18329e34465294c89d4d22dd46c5e81f963ce99fac90cbf87e1c73d500738"
    assert spec.labels == ["nurse", "surgeon"]
    gender = spec.attribute("gender")
    assert gender.groups == ["F", "M"]
    assert gender.stereotype == {"F": "nurse", "M": "surgeon"}
    assert spec.roles == {
        "train": "train_biased",
        "validate": "validate",
        "evaluate": "test",
        "oracle": "train_oracle",
    }


def test_professor_nurse_spec_fields() -> None:
    spec = load_spec(PROFESSOR_NURSE)
    assert isinstance(spec.source, HubSource)
    assert spec.source.path == "LabHC/bias_in_bios"
    assert isinstance(spec.splits, SourceSplits)
    assert spec.splits.split_names == ["train", "dev", "test"]
    assert (spec.text_column, spec.label_column) == ("hard_text", "profession")
    assert spec.label_values == {"nurse": 13, "professor": 21}
    assert spec.other_labels == "drop"
    gender = spec.attribute()
    assert gender.values == {"M": 0, "F": 1}
    assert gender.stereotype == {"F": "nurse", "M": "professor"}
    assert spec.subset("validate").split == "dev"
    assert set(spec.roles) == {"train", "validate", "evaluate", "oracle"}


@pytest.mark.parametrize("name", [SURGEON_NURSE, PROFESSOR_NURSE])
def test_shipped_spec_round_trips_through_yaml(name: str, tmp_path) -> None:
    spec = load_spec(name)
    path = tmp_path / "again.yaml"
    path.write_text(spec.to_yaml(), encoding="utf-8")
    assert DatasetSpec.from_yaml(path) == spec


def test_surgeon_nurse_subsets_have_documented_cell_counts() -> None:
    spec = load_spec(SURGEON_NURSE)
    train = load_role(spec, "train")
    assert len(train) == 3424
    assert cell_counts(train) == {("surgeon", "M"): 1839, ("nurse", "F"): 1585}
    validate = load_role(spec, "validate")
    assert len(validate) == 1277
    assert cell_counts(validate) == {
        ("nurse", "F"): 517,
        ("nurse", "M"): 50,
        ("surgeon", "F"): 95,
        ("surgeon", "M"): 615,
    }
    test = load_role(spec, "evaluate")
    assert len(test) == 1278
    assert cell_counts(test) == {
        ("nurse", "F"): 498,
        ("nurse", "M"): 49,
        ("surgeon", "F"): 101,
        ("surgeon", "M"): 630,
    }
    oracle = load_role(spec, "oracle")
    assert len(oracle) == 600
    assert cell_counts(oracle) == {(o, g): 150 for o in ("nurse", "surgeon") for g in ("F", "M")}


def test_surgeon_nurse_rows_are_consistent_with_their_dataset() -> None:
    spec = load_spec(SURGEON_NURSE)
    split = load_subset(spec, "test")
    assert split.texts == list(split.dataset["text"])
    assert split.labels.dtype == np.int64
    assert [split.label_names[i] for i in split.labels] == list(split.dataset["occupation"])
    assert split.groups["gender"].tolist() == list(split.dataset["gender"])
    assert set(split.dataset["split"]) == {"test"}


def test_surgeon_nurse_loading_is_deterministic() -> None:
    from editing_service.data import clear_cache

    spec = load_spec(SURGEON_NURSE)
    first = {name: load_subset(spec, name) for name in spec.subsets}
    clear_cache()
    again = load_spec(SURGEON_NURSE)
    for name, split in first.items():
        other = load_subset(again, name)
        assert other.texts == split.texts
        np.testing.assert_array_equal(other.labels, split.labels)
        np.testing.assert_array_equal(other.groups["gender"], split.groups["gender"])


def test_surgeon_nurse_stereotype_labels_give_gender_accuracy_one_on_the_biased_set() -> None:
    spec = load_spec(SURGEON_NURSE)
    train = load_role(spec, "train")
    np.testing.assert_array_equal(stereotype_labels(spec, train), train.labels)
    oracle = load_role(spec, "oracle")
    assert (stereotype_labels(spec, oracle) == oracle.labels).mean() == 0.5


def _fake_bias_in_bios(split: str) -> datasets.Dataset:
    # profession 21 = professor, 13 = nurse, 2 = attorney (left out); gender 0 = M, 1 = F
    rows = [(21, 0)] * 4 + [(21, 1)] * 3 + [(13, 0)] * 2 + [(13, 1)] * 5 + [(2, 0)] * 3
    return datasets.Dataset.from_dict(
        {
            "hard_text": [f"{split} bio {i}" for i in range(len(rows))],
            "profession": [p for p, _ in rows],
            "gender": [g for _, g in rows],
        }
    )


def test_professor_nurse_loads_through_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return _fake_bias_in_bios(kwargs["split"])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = load_spec(PROFESSOR_NURSE)
    revision = spec.source.revision
    train = load_role(spec, "train")
    oracle = load_role(spec, "oracle")
    validate = load_role(spec, "validate")
    assert calls == [
        ("LabHC/bias_in_bios", None, {"revision": revision, "split": "train"}),
        ("LabHC/bias_in_bios", None, {"revision": revision, "split": "dev"}),
    ]
    assert cell_counts(train) == {("professor", "M"): 4, ("nurse", "F"): 5}
    assert cell_counts(oracle) == {(o, g): 2 for o in ("nurse", "professor") for g in ("F", "M")}
    assert len(validate) == 14  # attorneys left out
    assert set(validate.texts) <= {f"dev bio {i}" for i in range(17)}
    assert train.label_names == ["nurse", "professor"]
