"""The service's configuration from environment variables, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from editing_service.config import (
    BAD_TOKEN_ENTRY,
    DUPLICATE_TOKEN,
    NEGATIVE,
    NO_TOKENS,
    NOT_A_COUNT,
    ServiceConfig,
    parse_tokens,
)
from editing_service.roles import Principal, Role


def test_defaults_live_under_home(tmp_path: Path) -> None:
    config = ServiceConfig.from_env({"EDITING_SERVICE_HOME": str(tmp_path), "EDITING_SERVICE_API_TOKENS": "a=1"})
    assert config.database_url == f"sqlite:///{tmp_path / 'service.db'}"
    assert config.model_roots == [tmp_path / "models"] and config.data_roots == [tmp_path / "data"]
    assert config.tokens == {"1": Principal("a", Role.admin)} and config.run_worker and config.max_request_bytes == 32 * 1024 * 1024


def test_everything_can_be_set(tmp_path: Path) -> None:
    config = ServiceConfig.from_env({
        "EDITING_SERVICE_HOME": str(tmp_path), "EDITING_SERVICE_API_TOKENS": "ana=x, ben=y",
        "EDITING_SERVICE_DATABASE_URL": "postgresql+psycopg://u@h/db", "EDITING_SERVICE_WORKER": "0",
        "EDITING_SERVICE_MODEL_ROOTS": f"{tmp_path}/a:{tmp_path}/b", "EDITING_SERVICE_MAX_REQUEST_MB": "0.5",
        "EDITING_SERVICE_JOB_STALE_S": "30", "EDITING_SERVICE_JOB_MAX_ATTEMPTS": "3",
    })
    assert config.tokens == {"x": Principal("ana", Role.admin), "y": Principal("ben", Role.admin)}
    assert not config.run_worker
    assert config.model_roots == [tmp_path / "a", tmp_path / "b"] and config.max_request_bytes == 512 * 1024
    assert (config.job_stale_seconds, config.job_max_attempts) == (30.0, 3)


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


def test_a_bad_number_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="EDITING_SERVICE_JOB_STALE_S must be a number, got 'soon'"):
        ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_JOB_STALE_S": "soon"})


def test_prediction_settings_can_be_set(tmp_path: Path) -> None:
    config = ServiceConfig.from_env({
        "EDITING_SERVICE_API_TOKENS": "a=1", "EDITING_SERVICE_PREDICT_MAX_TEXTS": "64",
        "EDITING_SERVICE_PREDICT_MAX_BATCH": "8", "EDITING_SERVICE_PREDICT_MAX_LATENCY_MS": "0",
        "EDITING_SERVICE_LOADED_MODELS": "2",
    })
    assert (config.max_predict_texts, config.predict_max_batch, config.predict_max_latency_ms) == (64, 8, 0.0)
    assert config.loaded_models == 2


@pytest.mark.parametrize(("name", "value", "message"), [
    ("EDITING_SERVICE_PREDICT_MAX_BATCH", "0", NOT_A_COUNT.format(name="EDITING_SERVICE_PREDICT_MAX_BATCH", value="0")),
    ("EDITING_SERVICE_LOADED_MODELS", "2.5", NOT_A_COUNT.format(name="EDITING_SERVICE_LOADED_MODELS", value="2.5")),
    ("EDITING_SERVICE_PREDICT_MAX_TEXTS", "-3", NOT_A_COUNT.format(name="EDITING_SERVICE_PREDICT_MAX_TEXTS", value="-3")),
    ("EDITING_SERVICE_PREDICT_MAX_LATENCY_MS", "-1",
     NEGATIVE.format(name="EDITING_SERVICE_PREDICT_MAX_LATENCY_MS", value="-1")),
    ("EDITING_SERVICE_PREDICT_MAX_BATCH", "many", "EDITING_SERVICE_PREDICT_MAX_BATCH must be a number, got 'many'."),
])
def test_bad_prediction_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        ServiceConfig.from_env({"EDITING_SERVICE_API_TOKENS": "a=1", name: value})
    assert str(raised.value) == message
