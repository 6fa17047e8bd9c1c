"""Configuration of the REST service, read from environment variables (one place for all of them).

    EDITING_SERVICE_HOME            artifacts (caches, SAEs, models, reports, uploads) and the default
                                    SQLite database; default ./service_data
    EDITING_SERVICE_DATABASE_URL    SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db;
                                    default sqlite:///$EDITING_SERVICE_HOME/service.db
    EDITING_SERVICE_API_TOKENS      comma-separated `name:role=token` entries (required), role one of
                                    admin, reviewer, viewer, service; the older `name=token` form means
                                    admin. The name is recorded with every change as its principal
    EDITING_SERVICE_DATABASE_TOKENS 1 to also accept tokens kept (hashed) in the database, created and
                                    revoked by admins over /v1/tokens without a restart; default 0
    EDITING_SERVICE_TOKEN_CACHE_S   seconds a database token lookup is reused; default 5 (0: every request)
    EDITING_SERVICE_MODEL_ROOTS     folders (separated by ':') that model folders must lie under;
                                    default $EDITING_SERVICE_HOME/models
    EDITING_SERVICE_DATA_ROOTS      folders that data files of inline specs must lie under;
                                    default $EDITING_SERVICE_HOME/data (uploads are always allowed)
    EDITING_SERVICE_MAX_REQUEST_MB  largest request body, in MiB; default 32
    EDITING_SERVICE_WORKER          1 to run jobs in this process (default), 0 for an API-only replica
    EDITING_SERVICE_DEVICE          auto | cpu | cuda, for jobs and predictions; default auto
    EDITING_SERVICE_JOB_STALE_S     seconds without a heartbeat before a running job counts as lost
                                    (then it is requeued, or failed once it has been tried
                                    EDITING_SERVICE_JOB_MAX_ATTEMPTS times; default 2)
    EDITING_SERVICE_PREDICT_MAX_TEXTS       most texts in one predict request; default 512
    EDITING_SERVICE_PREDICT_MAX_BATCH       most texts one forward pass of the adaptive batcher takes;
                                            default 32
    EDITING_SERVICE_PREDICT_MAX_LATENCY_MS  how long a request waits for others to join its batch;
                                            default 5 (0: answer each request on its own)
    EDITING_SERVICE_LOADED_MODELS           models kept loaded for predictions; default 4
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from editing_service.roles import Principal, Role

NO_TOKENS = (
    "EDITING_SERVICE_API_TOKENS is not set: give at least one `name:role=token` entry (comma-separated); "
    "every route except the health checks needs a bearer token."
)
BAD_TOKEN_ENTRY = (
    "EDITING_SERVICE_API_TOKENS entry {entry!r} must be `name:role=token` (or `name=token` for an admin) "
    "with every part non-empty."
)
BAD_TOKEN_ROLE = "EDITING_SERVICE_API_TOKENS entry for {name!r} has role {role!r}; roles are {roles}."
DUPLICATE_TOKEN = "EDITING_SERVICE_API_TOKENS gives the same token to {first!r} and {second!r}."
BAD_NUMBER = "{name} must be a number, got {value!r}."
NEGATIVE = "{name} must be 0 or more, got {value!r}."
NOT_A_COUNT = "{name} must be a whole number of at least 1, got {value!r}."


def parse_tokens(value: str) -> dict[str, Principal]:
    """`name:role=token,name2=token2` -> {token: Principal}; an entry without a role is an admin."""
    tokens: dict[str, Principal] = {}
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        owner, sep, token = (part.strip() for part in entry.partition("="))
        name, colon, role = (part.strip() for part in owner.partition(":"))
        if not sep or not name or not token or (colon and not role):
            raise ValueError(BAD_TOKEN_ENTRY.format(entry=entry))
        if role and role not in Role.__members__:
            raise ValueError(BAD_TOKEN_ROLE.format(name=name, role=role, roles=", ".join(Role)))
        if token in tokens:
            raise ValueError(DUPLICATE_TOKEN.format(first=tokens[token].name, second=name))
        tokens[token] = Principal(name=name, role=Role(role or Role.admin))
    if not tokens:
        raise ValueError(NO_TOKENS)
    return tokens


def _number(env: Mapping[str, str], name: str, default: float, *, allow_negative: bool = True) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as err:
        raise ValueError(BAD_NUMBER.format(name=name, value=raw)) from err
    if not allow_negative and not value >= 0:
        raise ValueError(NEGATIVE.format(name=name, value=raw))
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = _number(env, name, default)
    if not (value >= 1 and value == int(value)):
        raise ValueError(NOT_A_COUNT.format(name=name, value=env.get(name)))
    return int(value)


class ServiceConfig(BaseModel):
    """Everything the service process needs to know about its deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    database_url: str
    tokens: dict[str, Principal] = Field(description="bearer token -> its principal (name and role)")
    database_tokens: bool = Field(False, description="also accept the hashed tokens of the database's table")
    token_cache_seconds: float = Field(5.0, ge=0, description="how long a database token lookup is reused")
    model_roots: list[Path]
    data_roots: list[Path]
    max_request_bytes: int = 32 * 1024 * 1024
    max_predict_texts: int = Field(512, ge=1)
    run_worker: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    job_stale_seconds: float = 120.0
    job_max_attempts: int = 2
    heartbeat_seconds: float = 5.0
    worker_poll_seconds: float = 0.5
    predict_max_batch: int = Field(32, ge=1)
    predict_max_latency_ms: float = Field(5.0, ge=0)
    loaded_models: int = Field(4, ge=1)

    @property
    def uploads(self) -> Path:
        return self.home / "uploads"

    @property
    def projects(self) -> Path:
        return self.home / "projects"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceConfig:
        env = os.environ if env is None else env
        home = Path(env.get("EDITING_SERVICE_HOME") or "service_data").resolve()
        roots = lambda name, default: [  # noqa: E731
            Path(p).resolve() for p in (env.get(name) or str(default)).split(os.pathsep) if p
        ]
        return cls(
            home=home,
            database_url=env.get("EDITING_SERVICE_DATABASE_URL") or f"sqlite:///{home / 'service.db'}",
            tokens=parse_tokens(env.get("EDITING_SERVICE_API_TOKENS", "")),
            model_roots=roots("EDITING_SERVICE_MODEL_ROOTS", home / "models"),
            data_roots=roots("EDITING_SERVICE_DATA_ROOTS", home / "data"),
            max_request_bytes=int(_number(env, "EDITING_SERVICE_MAX_REQUEST_MB", 32) * 1024 * 1024),
            run_worker=env.get("EDITING_SERVICE_WORKER", "1") not in ("0", "false", "no"),
            database_tokens=env.get("EDITING_SERVICE_DATABASE_TOKENS", "0").lower() in ("1", "true", "yes"),
            token_cache_seconds=_number(env, "EDITING_SERVICE_TOKEN_CACHE_S", 5.0, allow_negative=False),
            device=env.get("EDITING_SERVICE_DEVICE") or "auto",
            job_stale_seconds=_number(env, "EDITING_SERVICE_JOB_STALE_S", 120.0),
            job_max_attempts=_count(env, "EDITING_SERVICE_JOB_MAX_ATTEMPTS", 2),
            max_predict_texts=_count(env, "EDITING_SERVICE_PREDICT_MAX_TEXTS", 512),
            predict_max_batch=_count(env, "EDITING_SERVICE_PREDICT_MAX_BATCH", 32),
            predict_max_latency_ms=_number(env, "EDITING_SERVICE_PREDICT_MAX_LATENCY_MS", 5.0, allow_negative=False),
            loaded_models=_count(env, "EDITING_SERVICE_LOADED_MODELS", 4),
        )
