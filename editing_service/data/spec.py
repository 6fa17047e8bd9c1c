"""The dataset spec: one YAML file that says where a dataset is and how the pipeline uses it.

A spec names its source (file, hub, disk), its text and label columns and class names, its protected
attributes (with an optional stereotype: the class each group is stereotypically given), how rows are
split, the named subsets (row selections of one split) and which subset plays each role: `train`
(fitting the head and the SAEs), `validate` (choices, suggestions), `evaluate` (the report) and,
optionally, `oracle` (a group-balanced training set for the oracle baseline).

Everything that can be checked without reading the data is checked when the spec is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from editing_service.data.sources import FileSource, Source
from editing_service.data.splits import SourceSplits, Splits
from editing_service.data.values import RawValue, check_names, fill_names

Role = Literal["train", "validate", "evaluate", "oracle"]
ROLES: tuple[str, ...] = get_args(Role)
REQUIRED_ROLES: tuple[str, ...] = ("train", "validate", "evaluate")  # `oracle` is optional

TOO_FEW_LABELS = "labels must name at least two classes, got {labels}."
DUPLICATE_ATTRIBUTES = "Protected attributes have duplicate names: {duplicates}."
STEREOTYPE_UNKNOWN_GROUP = "The stereotype of protected attribute {attribute!r} names unknown group {group!r}; the groups are: {available}."
STEREOTYPE_INCOMPLETE = (
    "The stereotype of protected attribute {attribute!r} gives no class for groups {missing}; "
    "it must give one for every group."
)
STEREOTYPE_UNKNOWN_CLASS = (
    "The stereotype of protected attribute {attribute!r} maps group {group!r} to unknown class {label!r}; "
    "the labels are: {available}."
)
SOURCE_SPLITS_NEED_SPLIT_SOURCE = "Splits of kind 'source' use the source's own splits, so they need a hub or disk source, not a {kind!r} source."
SUBSET_UNKNOWN_SPLIT = "Subset {subset!r} names unknown split {split!r}; the splits are: {available}."
SUBSET_NO_ATTRIBUTE = (
    "Subset {subset!r} selects by (label, group) cells, but the dataset declares no protected attribute."
)
SUBSET_AMBIGUOUS_ATTRIBUTE = (
    "Subset {subset!r} selects by (label, group) cells but does not say which protected attribute the groups "
    "belong to; set attribute to one of {available}."
)
SUBSET_UNKNOWN_ATTRIBUTE = "Subset {subset!r} names unknown protected attribute {attribute!r}; the protected attributes are: {available}."
CELL_UNKNOWN_LABEL = "Subset {subset!r} has a cell with unknown label {label!r}; the labels are: {available}."
CELL_UNKNOWN_GROUP = (
    "Subset {subset!r} has a cell with unknown {attribute!r} group {group!r}; the groups are: {available}."
)
DUPLICATE_CELLS = "Subset {subset!r} lists the same cell more than once: {cells}."
ROLES_MISSING = "roles must name a subset for each of train, validate and evaluate; missing: {missing}."
ROLE_UNKNOWN_SUBSET = "Role {role!r} names unknown subset {subset!r}; the subsets are: {available}."
UNKNOWN_SUBSET = "Dataset {name!r} has no subset {subset!r}; its subsets are: {available}."
UNKNOWN_ROLE = "Unknown role {role!r}; the roles are: {available}."
ROLE_NOT_SET = "Dataset {name!r} names no subset for role {role!r}."
NO_PROTECTED = "Dataset {name!r} declares no protected attribute."
UNKNOWN_ATTRIBUTE = (
    "Dataset {name!r} has no protected attribute {attribute!r}; its protected attributes are: {available}."
)
AMBIGUOUS_ATTRIBUTE = "Dataset {name!r} has several protected attributes ({available}); name one."
SPEC_FILE_NOT_FOUND = "Dataset spec file {path} does not exist."
INVALID_YAML = "Dataset spec {path} is not valid YAML: {problem}"
SPEC_NOT_MAPPING = "Dataset spec {path} must be a YAML mapping at the top level, got {kind}."
INVALID_SPEC = "Dataset spec {path} is invalid:\n{problems}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtectedAttribute(_Model):
    """A protected attribute: a column whose values name groups (e.g. gender F / M)."""

    name: str  # how reports and `TextSplit.groups` call it; defaults to the column name
    column: str
    groups: list[str]  # group names, in order; may be left out when `values` is given
    values: dict[str, RawValue] | None = None  # group name -> raw value in the column (default: the name)
    stereotype: dict[str, str] | None = None  # group name -> the class name stereotypically given to it

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = fill_names(data, "groups")
        if isinstance(data, dict) and data.get("name") is None and "column" in data:
            data = {**data, "name": data["column"]}
        return data

    @model_validator(mode="after")
    def _check(self) -> ProtectedAttribute:
        check_names(self.groups, self.values, f"protected attribute {self.name!r}")
        if self.stereotype is not None:
            for group in self.stereotype:
                if group not in self.groups:
                    raise ValueError(
                        STEREOTYPE_UNKNOWN_GROUP.format(
                            attribute=self.name, group=group, available=self.groups
                        )
                    )
            missing = [g for g in self.groups if g not in self.stereotype]
            if missing:
                raise ValueError(STEREOTYPE_INCOMPLETE.format(attribute=self.name, missing=missing))
        return self


class Cell(_Model):
    """One (label, group) cell; written in YAML as `[label, group]` or `{label: ..., group: ...}`."""

    label: str
    group: str

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        if isinstance(data, list | tuple) and len(data) == 2:
            return {"label": data[0], "group": data[1]}
        return data


class Subset(_Model):
    """A named selection of rows of one split."""

    split: str
    attribute: str | None = None  # the protected attribute of `cells` / `per_cell`; default: the only one
    cells: list[Cell] | None = None  # keep only these (label, group) cells; None keeps every row
    # rows drawn at random from each cell; "min": as many as the smallest cell has (balanced, nothing wasted)
    per_cell: Annotated[int, Field(ge=1)] | Literal["min"] | None = None
    max_rows: Annotated[int, Field(ge=1)] | None = None  # then at most this many rows, drawn at random
    seed: int = 0  # for `per_cell` and `max_rows` draws

    @property
    def by_cell(self) -> bool:
        """Whether the subset selects by (label, group) cells."""
        return self.cells is not None or self.per_cell is not None


class DatasetSpec(_Model):
    """A dataset and how the pipeline uses it; see the shipped `datasets_spec/*.yaml` files."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str = ""
    source: Source
    splits: Splits
    text_column: str
    label_column: str
    labels: list[str]  # class names, in class-index order
    # class name -> raw value in the label column (default: the name itself)
    label_values: dict[str, RawValue] | None = None
    other_labels: Literal["error", "drop"] = "error"  # rows whose label is not declared: refuse, or leave out
    protected: list[ProtectedAttribute] = []
    subsets: Annotated[dict[str, Subset], Field(min_length=1)]
    # role -> subset: train (head and SAEs), validate (choices, suggestions; never the report's data),
    # evaluate (the report), oracle (optional: a group-balanced training set for the oracle baseline)
    roles: dict[Role, str]

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if len(self.labels) < 2:
            raise ValueError(TOO_FEW_LABELS.format(labels=self.labels))
        check_names(self.labels, self.label_values, "labels")
        self._check_protected()
        if isinstance(self.splits, SourceSplits) and isinstance(self.source, FileSource):
            raise ValueError(SOURCE_SPLITS_NEED_SPLIT_SOURCE.format(kind=self.source.kind))
        for name, subset in self.subsets.items():
            self._check_subset(name, subset)
        missing = [role for role in REQUIRED_ROLES if role not in self.roles]
        if missing:
            raise ValueError(ROLES_MISSING.format(missing=missing))
        for role, subset_name in self.roles.items():
            if subset_name not in self.subsets:
                raise ValueError(
                    ROLE_UNKNOWN_SUBSET.format(role=role, subset=subset_name, available=list(self.subsets))
                )
        return self

    def _check_protected(self) -> None:
        names = [a.name for a in self.protected]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(DUPLICATE_ATTRIBUTES.format(duplicates=duplicates))
        for attribute in self.protected:
            for group, label in (attribute.stereotype or {}).items():
                if label not in self.labels:
                    raise ValueError(
                        STEREOTYPE_UNKNOWN_CLASS.format(
                            attribute=attribute.name, group=group, label=label, available=self.labels
                        )
                    )

    def _check_subset(self, name: str, subset: Subset) -> None:
        splits = self.splits.split_names
        if subset.split not in splits:
            raise ValueError(SUBSET_UNKNOWN_SPLIT.format(subset=name, split=subset.split, available=splits))
        if not subset.by_cell:
            if subset.attribute is not None:
                self._subset_attribute(name, subset)
            return
        attribute = self._subset_attribute(name, subset)
        pairs = [(c.label, c.group) for c in subset.cells or []]
        for label, group in pairs:
            if label not in self.labels:
                raise ValueError(CELL_UNKNOWN_LABEL.format(subset=name, label=label, available=self.labels))
            if group not in attribute.groups:
                raise ValueError(
                    CELL_UNKNOWN_GROUP.format(
                        subset=name, attribute=attribute.name, group=group, available=attribute.groups
                    )
                )
        repeated = sorted({p for p in pairs if pairs.count(p) > 1})
        if repeated:
            raise ValueError(DUPLICATE_CELLS.format(subset=name, cells=repeated))

    def _subset_attribute(self, name: str, subset: Subset) -> ProtectedAttribute:
        available = [a.name for a in self.protected]
        if subset.attribute is not None:
            if subset.attribute not in available:
                raise ValueError(
                    SUBSET_UNKNOWN_ATTRIBUTE.format(
                        subset=name, attribute=subset.attribute, available=available
                    )
                )
            return self.protected[available.index(subset.attribute)]
        if not self.protected:
            raise ValueError(SUBSET_NO_ATTRIBUTE.format(subset=name))
        if len(self.protected) > 1:
            raise ValueError(SUBSET_AMBIGUOUS_ATTRIBUTE.format(subset=name, available=available))
        return self.protected[0]

    # -- lookups -------------------------------------------------------------------------------------

    def subset(self, name: str) -> Subset:
        """Return the subset called `name`."""
        if name not in self.subsets:
            raise ValueError(UNKNOWN_SUBSET.format(name=self.name, subset=name, available=list(self.subsets)))
        return self.subsets[name]

    def role_subset(self, role: str) -> str:
        """Return the name of the subset that plays `role` (train, validate, evaluate or oracle)."""
        if role not in ROLES:
            raise ValueError(UNKNOWN_ROLE.format(role=role, available=list(ROLES)))
        subset_name = self.roles.get(role)  # type: ignore[call-overload]  # role is checked above
        if subset_name is None:
            raise ValueError(ROLE_NOT_SET.format(name=self.name, role=role))
        return subset_name

    def attribute(self, name: str | None = None) -> ProtectedAttribute:
        """Return the protected attribute called `name`; with None, the only one the spec declares."""
        available = [a.name for a in self.protected]
        if not self.protected:
            raise ValueError(NO_PROTECTED.format(name=self.name))
        if name is None:
            if len(self.protected) > 1:
                raise ValueError(AMBIGUOUS_ATTRIBUTE.format(name=self.name, available=available))
            return self.protected[0]
        if name not in available:
            raise ValueError(UNKNOWN_ATTRIBUTE.format(name=self.name, attribute=name, available=available))
        return self.protected[available.index(name)]

    def subset_attribute(self, name: str) -> ProtectedAttribute:
        """Return the protected attribute whose groups the cells of subset `name` use."""
        return self._subset_attribute(name, self.subset(name))

    # -- (de)serialisation ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: str | Path | None = None) -> DatasetSpec:
        """Build a spec from plain data; relative data paths resolve against `base_dir` when given.

        Raises pydantic's `ValidationError` (a `ValueError`) when the data does not describe a valid spec.
        """
        context = {"base_dir": Path(base_dir)} if base_dir is not None else None
        return cls.model_validate(data, context=context)

    @classmethod
    def from_yaml(cls, path: str | Path) -> DatasetSpec:
        """Read a spec from a YAML file; relative data paths resolve against the file's folder.

        Raises
        ------
        FileNotFoundError
            When the file does not exist.
        ValueError
            When the file is not YAML, or does not describe a valid spec (every problem is listed,
            with where it is in the file).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(SPEC_FILE_NOT_FOUND.format(path=path))
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(INVALID_YAML.format(path=path, problem=err)) from err
        if not isinstance(data, dict):
            raise ValueError(SPEC_NOT_MAPPING.format(path=path, kind=type(data).__name__))
        try:
            return cls.from_dict(data, base_dir=path.resolve().parent)
        except ValidationError as err:
            raise ValueError(INVALID_SPEC.format(path=path, problems=format_validation_error(err))) from err

    def to_yaml(self) -> str:
        """Return the spec as YAML (data paths absolute), readable again with `from_yaml`."""
        return yaml.safe_dump(
            self.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True
        )


def format_validation_error(err: ValidationError) -> str:
    """List a pydantic error's problems one a line, as `- where.in.the.spec: message`."""
    lines = []
    for problem in err.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        cause = (problem.get("ctx") or {}).get("error")
        message = str(cause) if problem["type"] == "value_error" and cause is not None else problem["msg"]
        lines.append(f"- {where}: {message}")
    return "\n".join(lines)
