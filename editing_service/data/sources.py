"""Where a dataset's rows come from, and reading them through the `datasets` library.

Three kinds, told apart by `kind`:

- `file`: one local CSV, JSON-lines or Parquet file, optionally pinned by its sha256;
- `hub`: a Hugging Face hub dataset (path, config name, revision);
- `disk`: a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`.

Relative paths are resolved against the spec file's folder (passed as the validation context
`{"base_dir": ...}` by `DatasetSpec.from_yaml`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Annotated, Literal

import datasets
import pyarrow
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

logger = logging.getLogger(__name__)

FileFormat = Literal["csv", "jsonl", "parquet"]
_SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_BUILDERS: dict[FileFormat, str] = {"csv": "csv", "jsonl": "json", "parquet": "parquet"}

UNKNOWN_FILE_FORMAT = (
    "Cannot tell the format of {path} from its suffix; set format to one of csv, jsonl, parquet."
)
BAD_SHA256 = "sha256 must be 64 hexadecimal characters, got {value!r}."
DATA_FILE_NOT_FOUND = "Data file {path} of dataset {name!r} does not exist."
UNREADABLE_FILE = "Data file {path} of dataset {name!r} cannot be read as {fmt} (empty, malformed or not UTF-8?): {cause}"
DATA_FOLDER_NOT_FOUND = "Saved dataset folder {path} of dataset {name!r} does not exist."
SHA256_MISMATCH = (
    "Data file {path} of dataset {name!r} has sha256 {actual}, but the spec expects {expected}: "
    "the file has changed or is not the one the spec describes."
)
NOT_A_DATASET_DICT = (
    "Saved dataset {path} of dataset {name!r} is a single Dataset, not a DatasetDict, so it has no split "
    "{split!r}; use splits of kind column or ratio."
)
NO_SUCH_SAVED_SPLIT = (
    "Saved dataset {path} of dataset {name!r} has no split {split!r}; its splits are: {available}."
)
SAVED_SPLIT_NEEDED = (
    "Saved dataset {path} of dataset {name!r} is a DatasetDict with splits {available}; set source.split to "
    "the one to read."
)


class _SourceBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = path.expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return path


class FileSource(_SourceBase):
    """One local data file, read with `datasets.load_dataset("csv" | "json" | "parquet")`."""

    kind: Literal["file"] = "file"
    path: Path  # relative paths resolve against the spec file's folder
    format: FileFormat | None = None  # None: from the suffix (.csv, .jsonl/.json, .parquet/.pq)
    sha256: str | None = None  # verified before reading when given

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, path: Path, info: ValidationInfo) -> Path:
        return _resolve(path, info)

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(BAD_SHA256.format(value=value))
        return value

    @model_validator(mode="after")
    def _check_format(self) -> FileSource:
        self.file_format  # noqa: B018 - raises when neither format nor suffix tells it
        return self

    @property
    def file_format(self) -> FileFormat:
        """The declared format, or the one the suffix names."""
        if self.format is not None:
            return self.format
        fmt = _SUFFIX_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise ValueError(UNKNOWN_FILE_FORMAT.format(path=self.path))
        return fmt


class HubSource(_SourceBase):
    """A Hugging Face hub dataset, read with `datasets.load_dataset(path, name, revision=..., split=...)`."""

    kind: Literal["hub"] = "hub"
    path: str  # e.g. "LabHC/bias_in_bios"
    name: str | None = None  # the config name, if the dataset has several
    revision: str | None = None  # a commit sha pins the data; None follows the main branch
    split: str = "train"  # the hub split read as the whole table when splits are not of kind "source"


class DiskSource(_SourceBase):
    """A folder written by `save_to_disk`, read with `datasets.load_from_disk`."""

    kind: Literal["disk"] = "disk"
    path: Path  # relative paths resolve against the spec file's folder
    split: str | None = None  # for a saved DatasetDict read as one table (splits not of kind "source")

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, path: Path, info: ValidationInfo) -> Path:
        return _resolve(path, info)


Source = Annotated[FileSource | HubSource | DiskSource, Field(discriminator="kind")]


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_fingerprint(source: FileSource | HubSource | DiskSource) -> tuple[object, ...]:
    """A key that changes when the source's content may have changed (for in-memory caches)."""
    if isinstance(source, HubSource):
        return (source.model_dump_json(),)
    try:
        stat = source.path.stat()
    except OSError:
        return (source.model_dump_json(), None)
    return (source.model_dump_json(), stat.st_mtime_ns, stat.st_size)


def read_source(
    source: FileSource | HubSource | DiskSource, *, dataset_name: str, split: str | None = None
) -> datasets.Dataset:
    """Read the rows of a source as one `datasets.Dataset`.

    Parameters
    ----------
    source : FileSource, HubSource or DiskSource
        Where the rows are.
    dataset_name : str
        The spec's name, for error messages.
    split : str or None
        For hub and disk sources: the split of the source to read (its own split name). None reads the
        whole table: `source.split` for the hub and disk kinds; file sources have one table.

    Returns
    -------
    datasets.Dataset
        The rows, in the source's order.
    """
    if isinstance(source, FileSource):
        return _read_file(source, dataset_name)
    if isinstance(source, HubSource):
        hub_split = split if split is not None else source.split
        logger.info(
            "Loading hub dataset %s (config %s, revision %s), split %s",
            source.path,
            source.name,
            source.revision,
            hub_split,
        )
        return datasets.load_dataset(source.path, source.name, revision=source.revision, split=hub_split)
    return _read_disk(source, dataset_name, split)


def _read_file(source: FileSource, dataset_name: str) -> datasets.Dataset:
    path = source.path
    if not path.is_file():
        raise FileNotFoundError(DATA_FILE_NOT_FOUND.format(path=path, name=dataset_name))
    fmt = source.file_format
    if source.sha256 is not None:
        actual = file_sha256(path)
        if actual != source.sha256:
            raise ValueError(
                SHA256_MISMATCH.format(path=path, name=dataset_name, actual=actual, expected=source.sha256)
            )
    logger.info("Loading %s file %s", fmt, path)
    try:
        return datasets.load_dataset(_BUILDERS[fmt], data_files=str(path), split="train")
    except (datasets.exceptions.DatasetGenerationError, pyarrow.ArrowException, UnicodeDecodeError) as err:
        raise ValueError(UNREADABLE_FILE.format(path=path, name=dataset_name, fmt=fmt, cause=_root_cause(err))) from err


def _root_cause(err: BaseException) -> str:
    """The first line of the innermost cause of `err` (what the reader choked on), at most 300 characters."""
    while (err.__cause__ or err.__context__) is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f"{type(err).__name__}: {text}"[:300]


def _read_disk(source: DiskSource, dataset_name: str, split: str | None) -> datasets.Dataset:
    path = source.path
    if not path.is_dir():
        raise FileNotFoundError(DATA_FOLDER_NOT_FOUND.format(path=path, name=dataset_name))
    logger.info("Loading saved dataset %s", path)
    loaded = datasets.load_from_disk(str(path))
    wanted = split if split is not None else source.split
    if isinstance(loaded, datasets.Dataset):
        if split is not None:
            raise ValueError(NOT_A_DATASET_DICT.format(path=path, name=dataset_name, split=split))
        return loaded
    available = list(loaded.keys())
    if wanted is None:
        raise ValueError(SAVED_SPLIT_NEEDED.format(path=path, name=dataset_name, available=available))
    if wanted not in loaded:
        raise ValueError(
            NO_SUCH_SAVED_SPLIT.format(path=path, name=dataset_name, split=wanted, available=available)
        )
    return loaded[wanted]
