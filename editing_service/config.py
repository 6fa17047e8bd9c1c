"""Configuration of the REST service: one typed, bounded pydantic-settings model of its environment variables.

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
    EDITING_SERVICE_MAX_REQUEST_MB  largest request body, in MiB (more than 0); default 32
    EDITING_SERVICE_WORKER          true/1 to run jobs in this process (default), false/0 for an API-only
                                    replica
    EDITING_SERVICE_DEVICE          auto | cpu | cuda, for jobs and predictions; default auto
    EDITING_SERVICE_DEVICE_MAP      none | auto: auto keeps the weights that fit on the device and offloads
                                    the rest to CPU memory and then disk (models larger than the device);
                                    default none
    EDITING_SERVICE_DEVICE_MEMORY_GB, EDITING_SERVICE_CPU_MEMORY_GB  with DEVICE_MAP auto: GiB of weights
                                    kept on the device, and in CPU memory behind a GPU; default: what is free
    EDITING_SERVICE_JOB_STALE_S     seconds (more than 0) without a heartbeat before a running job counts
                                    as lost (then it is requeued, or failed once it has been tried
                                    EDITING_SERVICE_JOB_MAX_ATTEMPTS times; default 2); default 120
    EDITING_SERVICE_JOBS_PER_PRINCIPAL      most jobs one principal may create per
                                            EDITING_SERVICE_JOB_WINDOW_S seconds, over every replica
                                            sharing the database (more is a 429);
                                            default 30 per 600 s
    EDITING_SERVICE_PREDICT_MAX_TEXTS       most texts in one predict request; default 512
    EDITING_SERVICE_PREDICT_MAX_TEXT_CHARS  most characters of one predict text; default 65536
    EDITING_SERVICE_PREDICT_MAX_BATCH       most texts one forward pass of the adaptive batcher takes;
                                            default 32
    EDITING_SERVICE_PREDICT_MAX_LATENCY_MS  how long a request waits for others to join its batch;
                                            default 5 (0: answer each request on its own)
    EDITING_SERVICE_LOADED_MODELS           models kept loaded for predictions; default 4
    EDITING_SERVICE_FAILED_ARTIFACTS_RETENTION_H  hours the artifacts of a failed or cancelled
                                            discovery or edit are kept (for a post-mortem) before the
                                            job worker removes them; default 72 (0: at its next sweep)

Every value is checked when the service starts; an error names the variable, the value and the bound.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from editing_service.roles import Principal, Role

PREFIX = "EDITING_SERVICE_"
MEMORY_WITHOUT_MAP = (
    "EDITING_SERVICE_DEVICE_MEMORY_GB and EDITING_SERVICE_CPU_MEMORY_GB are the budgets of "
    "EDITING_SERVICE_DEVICE_MAP=auto; set it, or unset them."
)
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
BAD_VARIABLE = "{name}={value!r}: {problem}"


class ConfigError(ValueError):
    """A bad environment variable, in one sentence per problem naming the variable."""


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


def _var(name: str) -> str:
    return PREFIX + name


Roots = Annotated[list[Path], NoDecode]


class ServiceConfig(BaseSettings):
    """Everything the service process needs to know about its deployment (one field per variable)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore", env_ignore_empty=True,
                                      populate_by_name=True)

    home: Path = Field(Path("service_data"), validation_alias=_var("HOME"))
    database_url: str = Field("", validation_alias=_var("DATABASE_URL"))
    tokens: Annotated[dict[str, Principal], NoDecode] = Field(
        "", validation_alias=_var("API_TOKENS"), validate_default=True, repr=False,
        description="bearer token -> its principal (name and role)")
    database_tokens: bool = Field(False, validation_alias=_var("DATABASE_TOKENS"),
                                  description="also accept the hashed tokens of the database's table")
    token_cache_seconds: float = Field(5.0, ge=0, le=3600, validation_alias=_var("TOKEN_CACHE_S"),
                                       description="how long a database token lookup is reused")
    model_roots: Roots = Field([], validation_alias=_var("MODEL_ROOTS"))
    data_roots: Roots = Field([], validation_alias=_var("DATA_ROOTS"))
    max_request_mb: float = Field(32.0, gt=0, le=64 * 1024, validation_alias=_var("MAX_REQUEST_MB"))
    run_worker: bool = Field(True, validation_alias=_var("WORKER"))
    device: Literal["auto", "cpu", "cuda"] = Field("auto", validation_alias=_var("DEVICE"))
    device_map: Literal["none", "auto"] = Field(
        "none", validation_alias=_var("DEVICE_MAP"),
        description="auto: models that do not fit the device keep what fits there and offload the rest to CPU "
                    "memory and disk, for jobs and predictions (ModelSettings.device_map)")
    device_memory_gb: float | None = Field(None, gt=0, le=100_000, validation_alias=_var("DEVICE_MEMORY_GB"))
    cpu_memory_gb: float | None = Field(None, gt=0, le=100_000, validation_alias=_var("CPU_MEMORY_GB"))
    job_stale_seconds: float = Field(120.0, gt=0, le=7 * 24 * 3600, validation_alias=_var("JOB_STALE_S"))
    job_max_attempts: int = Field(2, ge=1, le=100, validation_alias=_var("JOB_MAX_ATTEMPTS"))
    jobs_per_principal: int = Field(30, ge=1, le=1_000_000, validation_alias=_var("JOBS_PER_PRINCIPAL"))
    job_window_seconds: float = Field(600.0, gt=0, le=7 * 24 * 3600, validation_alias=_var("JOB_WINDOW_S"))
    heartbeat_seconds: float = Field(5.0, gt=0)
    worker_poll_seconds: float = Field(0.5, gt=0)
    max_predict_texts: int = Field(512, ge=1, le=100_000, validation_alias=_var("PREDICT_MAX_TEXTS"))
    max_predict_text_chars: int = Field(65536, ge=1, le=10_000_000, validation_alias=_var("PREDICT_MAX_TEXT_CHARS"))
    predict_max_batch: int = Field(32, ge=1, le=4096, validation_alias=_var("PREDICT_MAX_BATCH"))
    predict_max_latency_ms: float = Field(5.0, ge=0, le=10_000, validation_alias=_var("PREDICT_MAX_LATENCY_MS"))
    predict_max_tokens: int = Field(
        4096, ge=1, le=10_000_000, validation_alias=_var("PREDICT_MAX_TOKENS"),
        description="tokens per forward pass of the predict batcher: bounds how long a small request waits "
                    "behind a large one (a pass always takes at least one text)")
    predict_forward_texts: int | None = Field(
        None, ge=1, le=4096, validation_alias=_var("PREDICT_FORWARD_TEXTS"),
        description="texts per forward inside a pass, grouped by length; None: a quarter of predict_max_batch "
                    "on the CPU (less padding), the whole pass on a GPU (each forward's kernel launches cost "
                    "more than its padding)")
    loaded_models: int = Field(4, ge=1, le=256, validation_alias=_var("LOADED_MODELS"))
    failed_artifacts_retention_hours: float = Field(
        72.0, ge=0, le=10 * 365 * 24, validation_alias=_var("FAILED_ARTIFACTS_RETENTION_H"))

    def model_placement(self) -> dict[str, Any]:
        """Where every model of this service runs (the `ModelSettings` fields jobs and predictions take from it)."""
        return {"device": self.device, "device_map": self.device_map, "device_memory_gb": self.device_memory_gb,
                "cpu_memory_gb": self.cpu_memory_gb}

    def forward_texts(self, device_type: str) -> int:
        """`predict_forward_texts`, or its default on a device of type `device_type` ("cpu", "cuda")."""
        if self.predict_forward_texts is not None:
            return self.predict_forward_texts
        return self.predict_max_batch if device_type == "cuda" else max(1, self.predict_max_batch // 4)

    @field_validator("tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        return parse_tokens(value) if isinstance(value, str) else value

    @field_validator("model_roots", "data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        return [p for p in value.split(os.pathsep) if p] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _placement(self) -> ServiceConfig:
        if self.device_map == "none" and (self.device_memory_gb is not None or self.cpu_memory_gb is not None):
            raise ValueError(MEMORY_WITHOUT_MAP)
        return self

    @model_validator(mode="after")
    def _resolve(self) -> ServiceConfig:
        """Paths made absolute; the database and roots default to places under `home`."""
        home = self.home.expanduser().resolve()
        derived = {
            "home": home,
            "database_url": self.database_url or f"sqlite:///{home / 'service.db'}",
            "model_roots": [p.expanduser().resolve() for p in self.model_roots or [home / "models"]],
            "data_roots": [p.expanduser().resolve() for p in self.data_roots or [home / "data"]],
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, while validating
        return self

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def uploads(self) -> Path:
        return self.home / "uploads"

    @property
    def projects(self) -> Path:
        return self.home / "projects"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceConfig:
        """The configuration from the process's environment (or `env`), or a `ConfigError` naming each
        bad variable."""
        try:
            if env is None:
                return cls()
            return cls.model_validate({k: v for k, v in env.items() if k.startswith(PREFIX) and v != ""})
        except ValidationError as err:
            raise ConfigError(" ".join(_problem(e, env) for e in err.errors())) from None


def _problem(error: Any, env: Mapping[str, str] | None) -> str:
    name = str(error["loc"][0]) if error["loc"] else PREFIX
    value = (os.environ if env is None else env).get(name, "")
    problem = str(error["msg"]).removeprefix("Value error, ")
    if problem.startswith(PREFIX):  # the token parser names the variable itself
        return problem
    return BAD_VARIABLE.format(name=name, value=value, problem=problem).rstrip(".") + "."
