"""The Kubernetes manifests in deploy/k8s and the bentofile agree with each other and with the service."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = ["namespace.yaml", "secret.example.yaml", "pvc.yaml", "deployment.yaml", "service.yaml"]
SECRET_KEYS = {"EDITING_SERVICE_DATABASE_URL", "EDITING_SERVICE_API_TOKENS"}
CONTAINER_PORT = 3000


def _load(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d is not None]
    assert len(docs) == 1, f"{name} should hold one object, holds {len(docs)}"
    return docs[0]


@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    return {name: _load(name) for name in MANIFESTS}


@pytest.fixture(scope="module")
def deployment(objects) -> dict:
    return objects["deployment.yaml"]


@pytest.fixture(scope="module")
def container(deployment) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.fixture(scope="module")
def bentofile() -> dict:
    return yaml.safe_load((ROOT / "bentofile.yaml").read_text())


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def _port_number(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in named, f"port {port!r} is not a named port of the container"
    return named[port]


@pytest.mark.parametrize("name", [*MANIFESTS, "kustomization.yaml"])
def test_every_manifest_parses_with_kind_and_name(name):
    obj = _load(name)
    assert obj["apiVersion"] and obj["kind"]
    if obj["kind"] != "Kustomization":
        assert obj["metadata"]["name"]


def test_all_objects_live_in_the_declared_namespace(objects):
    namespace = objects["namespace.yaml"]
    assert namespace["kind"] == "Namespace"
    for name, obj in objects.items():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"], name
    assert _load("kustomization.yaml")["namespace"] == namespace["metadata"]["name"]


def test_deployment_runs_several_replicas_with_one_gpu_each(deployment, container):
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] > 1
    resources = container["resources"]
    assert int(resources["limits"]["nvidia.com/gpu"]) == 1
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert _port_number(container, "http") == CONTAINER_PORT


def test_probes_use_bentoml_health_routes(container):
    def probe(kind: str) -> tuple[str, int]:
        get = container[kind]["httpGet"]
        return get["path"], _port_number(container, get["port"])

    assert probe("readinessProbe") == ("/readyz", CONTAINER_PORT)
    assert probe("livenessProbe") == ("/livez", CONTAINER_PORT)
    assert probe("startupProbe")[1] == CONTAINER_PORT
    startup = container["startupProbe"]
    # Model loading on a cold GPU node: the startup probe must allow minutes, not seconds.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_termination_grace_outlasts_bentoml_worker_shutdown(deployment):
    # BentoML's process manager kills a worker 30 s after SIGTERM; the pod must not be killed sooner.
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30


def test_secret_values_come_from_the_example_secret(objects, container):
    secret = objects["secret.example.yaml"]
    assert secret["kind"] == "Secret"
    env = _env(container)
    for key in SECRET_KEYS:
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
        assert not ref.get("optional", False), f"{key} must be required: replicas cannot share SQLite"
    assert secret["stringData"]["EDITING_SERVICE_DATABASE_URL"].startswith("postgresql+psycopg://")
    tokens = secret["stringData"]["EDITING_SERVICE_API_TOKENS"].split(",")
    assert all(re.fullmatch(r"[^=,\s]+=[^=,\s]+", t) for t in tokens)


def test_artifacts_volume_is_shared_and_mounted_at_editing_service_home(objects, deployment, container):
    pvc = objects["pvc.yaml"]
    assert pvc["kind"] == "PersistentVolumeClaim"
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claimed = [
        n
        for n, v in volumes.items()
        if v.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"]
    ]
    assert len(claimed) == 1
    assert mounts[claimed[0]] == _env(container)["EDITING_SERVICE_HOME"]["value"]


def test_service_routes_port_80_to_the_deployment_pods(objects, deployment, container):
    service = objects["service.yaml"]
    assert service["spec"]["type"] == "ClusterIP"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector and selector.items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert _port_number(container, port["targetPort"]) == CONTAINER_PORT


def test_kustomization_lists_every_manifest_but_the_example_secret(container):
    kustomization = _load("kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(set(MANIFESTS) - {"secret.example.yaml"})
    image_names = {i["name"] for i in kustomization.get("images", [])}
    assert container["image"].rsplit(":", 1)[0] in image_names


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests():
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
    assert sorted(kinds) == ["Deployment", "Namespace", "PersistentVolumeClaim", "Service"]


def test_bentofile_home_matches_the_deployment(bentofile, container):
    envs = {e["name"]: e.get("value", "") for e in bentofile["envs"]}
    assert envs["EDITING_SERVICE_HOME"] == _env(container)["EDITING_SERVICE_HOME"]["value"]
    # An env listed with no value becomes `ENV NAME=` (empty, not unset) in the image.
    assert all(envs.values())
    assert not SECRET_KEYS & envs.keys()


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_bentofile_packages_cover_the_runtime_dependencies(bentofile):
    assert bentofile["service"] == "editing_service.api.service:EditingService"
    python = bentofile["python"]
    assert python["lock_packages"] is False  # a lock would need the package index
    packages = {_name(p): p for p in python["packages"]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # bentoml itself is added, pinned to the building version, by `bentoml build`.
    runtime = {_name(d) for d in project["dependencies"]} - {"bentoml"}
    assert runtime <= packages.keys(), runtime - packages.keys()
    assert packages["torch"] == "torch==2.13.0"
    assert "psycopg[binary]" in packages["psycopg"]
    assert "editing-service" not in packages  # the project travels as source, not from PyPI
