"""The specs shipped in the project's `datasets_spec/` folder, and `load_spec` (a shipped name or a path)."""

from __future__ import annotations

from pathlib import Path

from editing_service.data.spec import DatasetSpec

# editing_service/data/shipped.py -> the project root, which holds datasets_spec/ beside the package.
SHIPPED_SPECS_DIR = Path(__file__).resolve().parents[2] / "datasets_spec"

UNKNOWN_SPEC = "No shipped dataset spec is called {name!r}, and no file {name} exists; the shipped specs are: {available}."


def list_shipped_specs() -> list[str]:
    """Return the names of the shipped specs (their file names without `.yaml`), sorted."""
    if not SHIPPED_SPECS_DIR.is_dir():
        return []
    return sorted(p.stem for p in SHIPPED_SPECS_DIR.glob("*.yaml"))


def shipped_spec_path(name: str) -> Path:
    """Return the path of the shipped spec called `name`."""
    return SHIPPED_SPECS_DIR / f"{name}.yaml"


def load_spec(name_or_path: str | Path) -> DatasetSpec:
    """Read a dataset spec from a YAML path, or by the name of a shipped spec.

    Parameters
    ----------
    name_or_path : str or Path
        A path to a YAML file, or a shipped spec's name (see `list_shipped_specs`), e.g.
        `"biasbios_surgeon_nurse"`.

    Returns
    -------
    DatasetSpec
        The validated spec.
    """
    path = Path(name_or_path)
    if path.is_file():
        return DatasetSpec.from_yaml(path)
    is_name = isinstance(name_or_path, str) and path.suffix not in {".yaml", ".yml"} and len(path.parts) == 1
    if is_name and shipped_spec_path(str(name_or_path)).is_file():
        return DatasetSpec.from_yaml(shipped_spec_path(str(name_or_path)))
    if not is_name:
        return DatasetSpec.from_yaml(path)  # raises FileNotFoundError naming the path
    raise ValueError(UNKNOWN_SPEC.format(name=name_or_path, available=list_shipped_specs()))
