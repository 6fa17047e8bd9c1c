"""`bentoml build` works offline from the repo root, and the built bento serves on its own.

One build per module (a temporary BENTOML_HOME), then `bentoml serve <tag>` on a free port, polled on
/readyz and stopped with SIGTERM. Any attempt to reach the network goes to a dead proxy and fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bentoml
import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0
# A proxy on a port where nothing listens: a request to any outside host fails at once.
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "PIP_NO_INDEX": "1",
    "HF_HUB_OFFLINE": "1",
    "BENTOML_DO_NOT_TRACK": "True",
}


def _env(bentoml_home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDITING_SERVICE_") and "PROXY" not in k.upper()
    }
    return {**env, **OFFLINE, "BENTOML_HOME": str(bentoml_home), **extra}


def _files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def bentoml_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bentoml_home")


@pytest.fixture(scope="module")
def built(bentoml_home) -> tuple[str, Path]:
    """Build the bento; return its tag and its folder in the temporary store."""
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag", "."],
        cwd=ROOT,
        env=_env(bentoml_home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"bentoml build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    match = re.search(r"__tag__:(\S+)", done.stdout)
    assert match, done.stdout
    tag = match.group(1)
    name, version = tag.split(":")
    folder = bentoml_home / "bentos" / name / version
    assert (folder / "bento.yaml").is_file()
    return tag, folder


def test_bento_carries_the_package_and_the_shipped_datasets(built):
    _, folder = built
    src = folder / "src"
    package = {f for f in _files(ROOT / "editing_service") if f.endswith((".py", ".txt"))}
    assert package <= _files(src / "editing_service"), package - _files(src / "editing_service")
    assert "features/lexicons/gendered.txt" in package
    assert _files(src / "datasets_spec") == _files(ROOT / "datasets_spec")
    assert "data/README.md" in _files(src / "datasets_spec")  # the data's attribution
    top = {p.name for p in src.iterdir()}
    assert top == {"editing_service", "datasets_spec", "bentofile.yaml"}, top


def test_bento_pins_torch_and_bentoml_and_sets_the_artifacts_home(built):
    _, folder = built
    requirements = (folder / "env/python/requirements.txt").read_text().split()
    assert "torch==2.13.0" in requirements
    assert f"bentoml=={bentoml.__version__}" in requirements
    assert not any(r.startswith("editing-service") or r.startswith("editing_service") for r in requirements)
    dockerfile = (folder / "env/docker/Dockerfile").read_text()
    assert "ENV EDITING_SERVICE_HOME=" in dockerfile
    assert "EDITING_SERVICE_API_TOKENS" not in dockerfile  # secrets never go into the image


def test_bento_openapi_has_health_routes_and_the_v1_api(built):
    _, folder = built
    paths = yaml.safe_load((folder / "apis/openapi.yaml").read_text())["paths"]
    assert {"/readyz", "/livez", "/healthz"} <= paths.keys()
    assert any(p.startswith("/v1/") for p in paths), sorted(paths)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it was started in its own session), SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        pytest.fail(f"the server did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM")


def test_built_bento_serves_and_answers_readyz(built, bentoml_home, tmp_path):
    tag, _ = built
    port = _free_port()
    home = tmp_path / "home"
    env = _env(bentoml_home, EDITING_SERVICE_HOME=str(home), EDITING_SERVICE_API_TOKENS="test=secret")
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        status = None
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(base_url=base, timeout=5.0, trust_env=False) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status = client.get("/readyz").status_code
                except httpx.TransportError:
                    status = None
                if status == 200:
                    break
                time.sleep(0.5)
            assert status == 200, f"/readyz answered {status}; server log:\n{log_path.read_text()[-6000:]}"
            assert client.get("/livez").status_code == 200
            # The token reached the service from the environment: without it, only health checks answer.
            assert client.get("/docs.json").status_code == 401
            docs = client.get("/docs.json", headers={"Authorization": "Bearer secret"})
            assert docs.status_code == 200
            assert any(p.startswith("/v1/") for p in docs.json()["paths"])
    finally:
        _stop(proc)
    assert proc.returncode is not None
