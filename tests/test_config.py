"""The service's configuration from environment variables (pydantic-settings), and its errors."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from editing_service.config import (
    BAD_TOKEN_ENTRY,
    DUPLICATE_TOKEN,
    NO_TOKENS,
    ConfigError,
    ServiceConfig,
    parse_tokens,
)
from editing_service.jobs.runner import project_settings
from editing_service.roles import Principal, Role


def test_defaults_live_under_home(tmp_path: Path) -> None:
    config = ServiceConfig.from_env({"EDITING_SERVICE_HOME": str(tmp_path), "EDITING_SERVICE_API_TOKENS": "a=1"})
    assert config.database_url == f"sqlite:///{tmp_path / 'service.db'}"
    assert config.model_roots == [tmp_path / "models"] and config.data_roots == [tmp_path / "data"]
    assert config.tokens == {"1": Principal("a", Role.admin)} and config.run_worker
    assert config.max_request_bytes == 32 * 1024 * 1024
    assert not re.search(r"\btokens=", repr(config))  # tokens never appear in logs of the configuration


def test_everything_can_be_set(tmp_path: Path) -> None:
    config = ServiceConfig.from_env({
        "EDITING_SERVICE_HOME": str(tmp_path), "EDITING_SERVICE_API_TOKENS": "ana=x, ben=y",
        "EDITING_SERVICE_DATABASE_URL": "postgresql+psycopg://u@h/db", "EDITING_SERVICE_WORKER": "0",
        "EDITING_SERVICE_MODEL_ROOTS": f"{tmp_path}/a:{tmp_path}/b", "EDITING_SERVICE_MAX_REQUEST_MB": "0.5",
        "EDITING_SERVICE_JOB_STALE_S": "30", "EDITING_SERVICE_JOB_MAX_ATTEMPTS": "3",
        "EDITING_SERVICE_JOBS_PER_PRINCIPAL": "5", "EDITING_SERVICE_JOB_WINDOW_S": "60",
        "EDITING_SERVICE_FAILED_ARTIFACTS_RETENTION_H": "0",
    })
    assert config.tokens == {"x": Principal("ana", Role.admin), "y": Principal("ben", Role.admin)}
    assert not config.run_worker
    assert config.model_roots == [tmp_path / "a", tmp_path / "b"] and config.max_request_bytes == 512 * 1024
    assert (config.job_stale_seconds, config.job_max_attempts) == (30.0, 3)
    assert (config.jobs_per_principal, config.job_window_seconds) == (5, 60.0)
    assert config.failed_artifacts_retention_hours == 0.0


def test_the_process_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITING_SERVICE_API_TOKENS", "a=1")
    monkeypatch.setenv("EDITING_SERVICE_HOME", str(tmp_path))
    monkeypatch.setenv("EDITING_SERVICE_WORKER", "False")
    monkeypatch.setenv("EDITING_SERVICE_DATABASE_URL", "")  # empty: the default
    config = ServiceConfig.from_env()
    assert not config.run_worker and config.database_url == f"sqlite:///{tmp_path / 'service.db'}"


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("True", True), ("1", True), ("yes", True), ("false", False), ("False", False),
    ("FALSE", False), ("0", False), ("no", False), ("off", False),
])
def test_worker_switch_reads_booleans(value: str, expected: bool) -> None:
    config = ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_WORKER": value})
    assert config.run_worker is expected


@pytest.mark.parametrize(("value", "message"), [
    ("", NO_TOKENS),
    ("justatoken", BAD_TOKEN_ENTRY.format(entry="justatoken")),
    ("ana=", BAD_TOKEN_ENTRY.format(entry="ana=")),
    ("ana=x,ben=x", DUPLICATE_TOKEN.format(first="ana", second="ben")),
])
def test_bad_tokens_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_tokens(value)
    assert str(raised.value) == message
    with pytest.raises(ConfigError) as raised:
        ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": value})
    assert str(raised.value) == message


def test_prediction_settings_can_be_set(tmp_path: Path) -> None:
    config = ServiceConfig.from_env({
        "EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_PREDICT_MAX_TEXTS": "64",
        "EDITING_SERVICE_PREDICT_MAX_BATCH": "8", "EDITING_SERVICE_PREDICT_MAX_LATENCY_MS": "0",
        "EDITING_SERVICE_LOADED_MODELS": "2", "EDITING_SERVICE_PREDICT_MAX_TEXT_CHARS": "1000",
    })
    assert (config.max_predict_texts, config.predict_max_batch, config.predict_max_latency_ms) == (64, 8, 0.0)
    assert config.loaded_models == 2 and config.max_predict_text_chars == 1000
    assert (config.predict_max_tokens, config.forward_texts("cpu"), config.forward_texts("cuda")) == (4096, 2, 8)
    pinned = ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_PREDICT_MAX_TOKENS": "512",
                                     "EDITING_SERVICE_PREDICT_FORWARD_TEXTS": "5"})
    assert (pinned.predict_max_tokens, pinned.forward_texts("cpu"), pinned.forward_texts("cuda")) == (512, 5, 5)


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("EDITING_SERVICE_WORKER", "maybe", "valid boolean"),
    ("EDITING_SERVICE_MAX_REQUEST_MB", "-1", "greater than 0"),
    ("EDITING_SERVICE_MAX_REQUEST_MB", "0", "greater than 0"),
    ("EDITING_SERVICE_JOB_STALE_S", "-5", "greater than 0"),
    ("EDITING_SERVICE_JOB_STALE_S", "soon", "valid number"),
    ("EDITING_SERVICE_JOB_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ("EDITING_SERVICE_JOBS_PER_PRINCIPAL", "0", "greater than or equal to 1"),
    ("EDITING_SERVICE_PREDICT_MAX_BATCH", "0", "greater than or equal to 1"),
    ("EDITING_SERVICE_PREDICT_MAX_BATCH", "many", "valid integer"),
    ("EDITING_SERVICE_LOADED_MODELS", "2.5", "valid integer"),
    ("EDITING_SERVICE_PREDICT_MAX_TEXTS", "-3", "greater than or equal to 1"),
    ("EDITING_SERVICE_PREDICT_MAX_TEXTS", "1000000000", "less than or equal to"),
    ("EDITING_SERVICE_PREDICT_MAX_LATENCY_MS", "-1", "greater than or equal to 0"),
    ("EDITING_SERVICE_FAILED_ARTIFACTS_RETENTION_H", "-1", "greater than or equal to 0"),
    ("EDITING_SERVICE_DEVICE", "tpu", "'auto', 'cpu' or 'cuda'"),
])
def test_bad_values_name_the_variable(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", name: value})
    assert str(raised.value).startswith(f"{name}={value!r}: ") and problem in str(raised.value)


def test_a_memory_budget_needs_the_device_map_and_jobs_take_the_services_placement(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="EDITING_SERVICE_DEVICE_MAP=auto; set it, or unset them"):
        ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_DEVICE_MEMORY_GB": "2"})
    config = ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_DEVICE": "cpu",
                                     "EDITING_SERVICE_DEVICE_MAP": "auto", "EDITING_SERVICE_DEVICE_MEMORY_GB": "2"})
    project = SimpleNamespace(settings={"model": {"device_map": "none"}}, model_ref=str(tmp_path), spec_ref="x.yaml")
    model = project_settings(project, config).model
    assert (model.device, model.device_map, model.device_memory_gb) == ("cpu", "auto", 2.0)
