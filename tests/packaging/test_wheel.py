"""A regular (non-editable) wheel install works on its own: the CLI starts and the shipped dataset spec
and its data are found inside the installed package, with no source tree beside it.

The wheel is built offline from a copy of the project (no build isolation: setuptools comes from the
running environment), installed without dependencies into a fresh venv whose only other path is the
running environment's site-packages (torch and the rest, never downloaded), and run from an empty
folder with no PYTHONPATH, so nothing can come from this checkout.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "editing_service", "datasets_spec")
LOAD_SHIPPED = """
import editing_service, sys
from editing_service.data import SHIPPED_SPECS_DIR, list_shipped_specs, load_role, load_spec
assert editing_service.__file__.startswith(sys.prefix), editing_service.__file__
assert SHIPPED_SPECS_DIR.is_relative_to(sys.prefix), SHIPPED_SPECS_DIR
spec = load_spec("biasbios_surgeon_nurse")
print(sorted(list_shipped_specs()), len(load_role(spec, "train")))
"""


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv with the built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PIP_NO_INDEX": "1"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(source)], cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("editing_service-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
         cwd=tmp, env=env)
    venv_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp).strip())
    ours = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    (venv_site / "zz_dependencies.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    return venv


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("EDITING_SERVICE_")}


def test_the_installed_cli_runs(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed / "bin" / "editing-service"), "run", "--help"], cwd=tmp_path, env=_clean_env())
    assert "--spec" in out and "--flags" in out


def test_the_installed_package_finds_the_shipped_spec_and_data(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed / "bin" / "python"), "-c", LOAD_SHIPPED], cwd=tmp_path, env=_clean_env())
    names, rows = out.split("]")
    assert "biasbios_surgeon_nurse" in names and int(rows) > 1000
