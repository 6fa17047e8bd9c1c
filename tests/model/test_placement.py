"""Offloading a model that does not fit its device: what stays, what goes, and that nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from factories import TINY_SPEC, make_bios_frame, make_model_folder
from pydantic import ValidationError
from transformers import AutoConfig, AutoModelForSequenceClassification

from editing_service.cli import main
from editing_service.edit import load_model
from editing_service.model import load_classifier
from editing_service.model.placement import GB, DeviceMap, offload_map
from editing_service.settings import ModelSettings

TEXTS = ["she works as a nurse in the ward", "he is a surgeon", "the trauma team of the city hospital"] * 3


def _weights_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / GB


def test_a_small_budget_keeps_the_head_on_the_device_and_sends_the_rest_to_disk(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path, "bert", sequence_classification=True)
    config = AutoConfig.from_pretrained(folder)
    whole = offload_map(AutoModelForSequenceClassification, config, device=torch.device("cpu"), dtype=torch.float32,
                        placement=DeviceMap(device_gb=10 * _weights_gb(folder)), keep=lambda _: ("classifier",))
    assert set(whole.values()) == {"cpu"}
    small = offload_map(AutoModelForSequenceClassification, config, device=torch.device("cpu"), dtype=torch.float32,
                        placement=DeviceMap(device_gb=_weights_gb(folder) / 2), keep=lambda _: ("classifier",))
    assert small["classifier"] == "cpu" and "disk" in small.values()
    nothing = offload_map(AutoModelForSequenceClassification, config, device=torch.device("cpu"),
                          dtype=torch.float32, placement=DeviceMap(device_gb=1e-9), keep=lambda _: ("classifier",))
    assert nothing["classifier"] == "cpu" and all(v == "disk" for k, v in nothing.items() if k != "classifier")


@pytest.mark.parametrize(("arch", "sequence_classification"), [("bert", True), ("llama", True), ("gpt2", False)])
def test_an_offloaded_classifier_computes_what_the_whole_one_does(tmp_path: Path, arch: str,
                                                                    sequence_classification: bool) -> None:
    folder = make_model_folder(tmp_path, arch, sequence_classification=sequence_classification)
    classes = ["nurse", "surgeon"]
    whole = load_classifier(folder, classes=classes)
    offloaded = load_classifier(folder, classes=classes, device_map=DeviceMap(device_gb=_weights_gb(folder) / 2))
    assert any(p.device.type == "meta" for p in offloaded.backbone.parameters())  # really off the device
    assert offloaded.device == torch.device("cpu")
    if not sequence_classification:
        head = torch.nn.Linear(whole.backbone.config.hidden_size, 2)
        whole.set_head(head)
        offloaded.set_head(head)
    torch.testing.assert_close(torch.from_numpy(offloaded.predict_proba(TEXTS)),
                               torch.from_numpy(whole.predict_proba(TEXTS)), atol=1e-6, rtol=0)


def test_a_run_with_offloaded_weights_reports_and_saves_what_a_whole_run_does(tmp_path: Path) -> None:
    make_bios_frame(12).to_csv(tmp_path / "bios.csv", index=False)
    (tmp_path / "spec.yaml").write_text(TINY_SPEC)
    model = make_model_folder(tmp_path, "bert", sequence_classification=True)
    common = ["-q", "run", "--spec", str(tmp_path / "spec.yaml"), "--model", str(model), "--d-sae", "64", "--k", "4",
              "--epochs", "2", "--attribution-examples", "16", "--no-circuit-graph", "--rows", "oracle",
              "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "whole")]) == 0
    assert main([*common, "--out", str(tmp_path / "offloaded"), "--device-map", "auto",
                 "--device-memory-gb", str(_weights_gb(model) / 2)]) == 0
    rows = {name: _without_timings(json.loads((tmp_path / name / "report.json").read_text())["rows"])
            for name in ("whole", "offloaded")}
    assert rows["offloaded"] == rows["whole"]
    edited = tmp_path / "offloaded" / "models" / "edited"
    served = load_model(edited, device_map=DeviceMap(device_gb=_weights_gb(model) / 2))
    torch.testing.assert_close(torch.from_numpy(served.predict_proba(TEXTS)),
                               torch.from_numpy(load_model(edited).predict_proba(TEXTS)), atol=1e-6, rtol=0)


def _without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_a_memory_budget_without_a_device_map_is_refused() -> None:
    with pytest.raises(ValidationError, match="device_memory_gb set the budget of device_map auto"):
        ModelSettings(device_memory_gb=2.0)
    assert ModelSettings(device_map="auto", device_memory_gb=2.0).placement() == DeviceMap(device_gb=2.0)
    assert ModelSettings().placement() is None
