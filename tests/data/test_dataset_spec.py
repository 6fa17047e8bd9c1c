"""Building specs: defaults, path resolution, and every build-time error with its exact message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from editing_service.data import DatasetSpec, FileSource, load_spec, sources, splits, values
from editing_service.data import spec as spec_module
from editing_service.data.spec import (
    CELL_UNKNOWN_GROUP,
    CELL_UNKNOWN_LABEL,
    INVALID_SPEC,
    INVALID_YAML,
    ROLE_UNKNOWN_SUBSET,
    SPEC_FILE_NOT_FOUND,
    SPEC_NOT_MAPPING,
    STEREOTYPE_UNKNOWN_CLASS,
    SUBSET_UNKNOWN_SPLIT,
)

GENDER = {
    "name": "gender",
    "column": "gender",
    "groups": ["F", "M"],
    "stereotype": {"F": "nurse", "M": "surgeon"},
}
SUBSETS = ["train_biased", "validate", "test", "train_oracle"]


def build_error(data: dict[str, Any]) -> str:
    """Build a spec that must fail with one value error; return that error's message."""
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    problems = err.value.errors()
    assert len(problems) == 1, problems
    assert problems[0]["type"] == "value_error", problems
    return str(problems[0]["ctx"]["error"])


def test_spec_dict_builds(spec_dict) -> None:
    spec = DatasetSpec.from_dict(spec_dict())
    assert spec.subset_attribute("train_oracle").name == "gender"
    assert spec.role_subset("oracle") == "train_oracle"
    assert [(c.label, c.group) for c in spec.subset("train_biased").cells] == [
        ("surgeon", "M"),
        ("nurse", "F"),
    ]


def test_relative_data_path_resolves_against_the_spec_folder(tmp_path: Path, spec_dict) -> None:
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "s.yaml"
    path.write_text(yaml.safe_dump(spec_dict("../data/tiny.csv")), encoding="utf-8")
    spec = DatasetSpec.from_yaml(path)
    assert isinstance(spec.source, FileSource)
    assert spec.source.path == tmp_path / "specs" / ".." / "data" / "tiny.csv"


def test_absolute_data_path_is_kept(tmp_path: Path, spec_dict, make_spec) -> None:
    spec = DatasetSpec.from_yaml(make_spec(source={"kind": "file", "path": "/elsewhere/x.csv"}))
    assert spec.source.path == Path("/elsewhere/x.csv")


def test_from_dict_without_base_dir_keeps_relative_paths(spec_dict) -> None:
    assert DatasetSpec.from_dict(spec_dict("rel/tiny.csv")).source.path == Path("rel/tiny.csv")


def test_protected_name_defaults_to_column_and_groups_to_value_keys(spec_dict) -> None:
    data = spec_dict(protected=[{"column": "sex", "values": {"M": 0, "F": 1}}])
    attribute = DatasetSpec.from_dict(data).attribute()
    assert (attribute.name, attribute.groups, attribute.values) == ("sex", ["M", "F"], {"M": 0, "F": 1})


def test_cells_accept_mappings_and_pairs(spec_dict) -> None:
    data = spec_dict()
    data["subsets"]["train_biased"]["cells"] = [{"label": "surgeon", "group": "M"}, ["nurse", "F"]]
    cells = DatasetSpec.from_dict(data).subset("train_biased").cells
    assert [(c.label, c.group) for c in cells] == [("surgeon", "M"), ("nurse", "F")]


def test_column_split_names_default_to_value_keys(spec_dict) -> None:
    data = spec_dict(
        splits={
            "kind": "column",
            "column": "split",
            "values": {"train": "tr", "validate": "va", "test": "te"},
        }
    )
    assert DatasetSpec.from_dict(data).splits.split_names == ["train", "validate", "test"]


def test_role_naming_unknown_subset(spec_dict) -> None:
    data = spec_dict(roles={"train": "train_biassed", "validate": "validate", "evaluate": "test"})
    assert build_error(data) == ROLE_UNKNOWN_SUBSET.format(
        role="train", subset="train_biassed", available=SUBSETS
    )


def test_roles_must_cover_train_validate_evaluate(spec_dict) -> None:
    data = spec_dict(roles={"train": "train_biased", "evaluate": "test"})
    assert build_error(data) == spec_module.ROLES_MISSING.format(missing=["validate"])


def test_unknown_role_key_is_refused(spec_dict) -> None:
    data = spec_dict(
        roles={"train": "train_biased", "validate": "validate", "evaluate": "test", "audit": "test"}
    )
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    assert [(e["loc"], e["type"]) for e in err.value.errors()] == [
        (("roles", "audit", "[key]"), "literal_error")
    ]


def test_cell_naming_unknown_label(spec_dict) -> None:
    data = spec_dict()
    data["subsets"]["train_biased"]["cells"] = [["surgeon", "M"], ["doctor", "F"]]
    assert build_error(data) == CELL_UNKNOWN_LABEL.format(
        subset="train_biased", label="doctor", available=["nurse", "surgeon"]
    )


def test_cell_naming_unknown_group(spec_dict) -> None:
    data = spec_dict()
    data["subsets"]["train_biased"]["cells"] = [["surgeon", "X"]]
    assert build_error(data) == CELL_UNKNOWN_GROUP.format(
        subset="train_biased", attribute="gender", group="X", available=["F", "M"]
    )


def test_repeated_cell(spec_dict) -> None:
    data = spec_dict()
    data["subsets"]["train_biased"]["cells"] = [["surgeon", "M"], ["surgeon", "M"]]
    assert build_error(data) == spec_module.DUPLICATE_CELLS.format(
        subset="train_biased", cells=[("surgeon", "M")]
    )


def test_stereotype_naming_unknown_class(spec_dict) -> None:
    data = spec_dict(protected=[{**GENDER, "stereotype": {"F": "nurse", "M": "doctor"}}])
    assert build_error(data) == STEREOTYPE_UNKNOWN_CLASS.format(
        attribute="gender", group="M", label="doctor", available=["nurse", "surgeon"]
    )


def test_stereotype_naming_unknown_group(spec_dict) -> None:
    data = spec_dict(protected=[{**GENDER, "stereotype": {"F": "nurse", "M": "surgeon", "X": "nurse"}}])
    assert build_error(data) == spec_module.STEREOTYPE_UNKNOWN_GROUP.format(
        attribute="gender", group="X", available=["F", "M"]
    )


def test_stereotype_must_cover_every_group(spec_dict) -> None:
    data = spec_dict(protected=[{**GENDER, "stereotype": {"F": "nurse"}}])
    assert build_error(data) == spec_module.STEREOTYPE_INCOMPLETE.format(attribute="gender", missing=["M"])


def test_subset_naming_unknown_split(spec_dict) -> None:
    data = spec_dict()
    data["subsets"]["validate"]["split"] = "valid"
    assert build_error(data) == SUBSET_UNKNOWN_SPLIT.format(
        subset="validate", split="valid", available=["train", "validate", "test"]
    )


def test_cells_without_protected_attribute(spec_dict) -> None:
    data = spec_dict(protected=[])
    assert build_error(data) == spec_module.SUBSET_NO_ATTRIBUTE.format(subset="train_biased")


def test_cells_with_two_protected_attributes_must_name_one(spec_dict) -> None:
    race = {"name": "race", "column": "race", "groups": ["a", "b"]}
    data = spec_dict(protected=[GENDER, race])
    assert build_error(data) == spec_module.SUBSET_AMBIGUOUS_ATTRIBUTE.format(
        subset="train_biased", available=["gender", "race"]
    )
    for name in ("train_biased", "train_oracle"):
        data["subsets"][name]["attribute"] = "gender"
    assert DatasetSpec.from_dict(data).subset_attribute("train_oracle").name == "gender"


def test_subset_naming_unknown_attribute(spec_dict) -> None:
    data = spec_dict()
    data["subsets"]["train_oracle"]["attribute"] = "age"
    assert build_error(data) == spec_module.SUBSET_UNKNOWN_ATTRIBUTE.format(
        subset="train_oracle", attribute="age", available=["gender"]
    )


def test_duplicate_protected_attributes(spec_dict) -> None:
    data = spec_dict(protected=[GENDER, GENDER])
    assert build_error(data) == spec_module.DUPLICATE_ATTRIBUTES.format(duplicates=["gender"])


def test_too_few_labels(spec_dict) -> None:
    data = spec_dict(
        labels=["nurse"],
        subsets={"all": {"split": "train"}},
        roles={"train": "all", "validate": "all", "evaluate": "all"},
    )
    assert build_error(data) == spec_module.TOO_FEW_LABELS.format(labels=["nurse"])


def test_duplicate_labels(spec_dict) -> None:
    data = spec_dict(labels=["nurse", "surgeon", "nurse"])
    assert build_error(data) == values.DUPLICATE_NAMES.format(what="labels", duplicates=["nurse"])


def test_label_values_must_map_the_labels(spec_dict) -> None:
    data = spec_dict(label_values={"nurse": 13, "professor": 21})
    assert build_error(data) == values.VALUES_KEYS_MISMATCH.format(
        what="labels", names=["nurse", "surgeon"], keys=["nurse", "professor"]
    )


def test_label_values_must_be_distinct(spec_dict) -> None:
    data = spec_dict(label_values={"nurse": 13, "surgeon": 13.0})
    assert build_error(data) == values.DUPLICATE_RAW_VALUES.format(
        what="labels", first="nurse", second="surgeon", value=13.0
    )


def test_ratios_must_sum_to_one(spec_dict) -> None:
    ratios = {"train": 0.5, "validate": 0.2, "test": 0.2}
    data = spec_dict(splits={"kind": "ratio", "ratios": ratios, "seed": 1})
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    (problem,) = err.value.errors()
    assert problem["loc"] == ("splits", "ratio")
    assert str(problem["ctx"]["error"]) == splits.RATIOS_SUM.format(total=0.9, ratios=ratios)


def test_source_splits_need_a_hub_or_disk_source(spec_dict) -> None:
    data = spec_dict(splits={"kind": "source", "names": ["train", "validate", "test"]})
    assert build_error(data) == spec_module.SOURCE_SPLITS_NEED_SPLIT_SOURCE.format(kind="file")


def test_file_format_must_be_known(spec_dict) -> None:
    data = spec_dict("tiny.txt")
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    (problem,) = err.value.errors()
    assert str(problem["ctx"]["error"]) == sources.UNKNOWN_FILE_FORMAT.format(path=Path("tiny.txt"))
    assert DatasetSpec.from_dict(spec_dict(source={"kind": "file", "path": "tiny.txt", "format": "csv"}))


def test_sha256_must_be_hex(spec_dict) -> None:
    data = spec_dict(source={"kind": "file", "path": "tiny.csv", "sha256": "abc"})
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    (problem,) = err.value.errors()
    assert str(problem["ctx"]["error"]) == sources.BAD_SHA256.format(value="abc")


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda d: d.update(text_colum="text"), ("text_colum",)),
        (lambda d: d["subsets"]["train_oracle"].update(per_cel=2), ("subsets", "train_oracle", "per_cel")),
        (lambda d: d["source"].update(sha="x"), ("source", "file", "sha")),
        (lambda d: d["protected"][0].update(stereotypes={}), ("protected", 0, "stereotypes")),
    ],
)
def test_unknown_fields_are_refused(spec_dict, change, loc) -> None:
    data = spec_dict()
    change(data)
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    assert [(e["loc"], e["type"]) for e in err.value.errors()] == [(loc, "extra_forbidden")]


def test_source_needs_a_kind(spec_dict) -> None:
    data = spec_dict(source={"path": "tiny.csv"})
    with pytest.raises(ValidationError) as err:
        DatasetSpec.from_dict(data)
    assert [e["type"] for e in err.value.errors()] == ["union_tag_not_found"]


def test_from_yaml_lists_every_problem_with_its_place(make_spec) -> None:
    path = make_spec(text_colum="text", roles={"train": "nope", "validate": "validate", "evaluate": "test"})
    with pytest.raises(ValueError) as err:
        DatasetSpec.from_yaml(path)
    assert str(err.value) == INVALID_SPEC.format(
        path=path, problems="- text_colum: Extra inputs are not permitted"
    )
    path = make_spec(roles={"train": "nope", "validate": "validate", "evaluate": "test"})
    with pytest.raises(ValueError) as err:
        DatasetSpec.from_yaml(path)
    message = ROLE_UNKNOWN_SUBSET.format(role="train", subset="nope", available=SUBSETS)
    assert str(err.value) == INVALID_SPEC.format(path=path, problems=f"- (top level): {message}")


def test_from_yaml_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError) as yaml_err:
        yaml.safe_load(path.read_text())
    with pytest.raises(ValueError) as err:
        DatasetSpec.from_yaml(path)
    assert str(err.value) == INVALID_YAML.format(path=path, problem=yaml_err.value)


def test_from_yaml_needs_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        DatasetSpec.from_yaml(path)
    assert str(err.value) == SPEC_NOT_MAPPING.format(path=path, kind="list")


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(FileNotFoundError) as err:
        load_spec(path)
    assert str(err.value) == SPEC_FILE_NOT_FOUND.format(path=path)
    with pytest.raises(FileNotFoundError) as err:
        load_spec(str(path))
    assert str(err.value) == SPEC_FILE_NOT_FOUND.format(path=path)


def test_lookups_name_what_is_missing(spec_dict) -> None:
    spec = DatasetSpec.from_dict(
        spec_dict(roles={"train": "train_biased", "validate": "validate", "evaluate": "test"})
    )
    with pytest.raises(ValueError) as err:
        spec.role_subset("oracle")
    assert str(err.value) == spec_module.ROLE_NOT_SET.format(name="tiny", role="oracle")
    with pytest.raises(ValueError) as err:
        spec.role_subset("audit")
    assert str(err.value) == spec_module.UNKNOWN_ROLE.format(
        role="audit", available=["train", "validate", "evaluate", "oracle"]
    )
    with pytest.raises(ValueError) as err:
        spec.subset("nope")
    assert str(err.value) == spec_module.UNKNOWN_SUBSET.format(name="tiny", subset="nope", available=SUBSETS)
    with pytest.raises(ValueError) as err:
        spec.attribute("age")
    assert str(err.value) == spec_module.UNKNOWN_ATTRIBUTE.format(
        name="tiny", attribute="age", available=["gender"]
    )
