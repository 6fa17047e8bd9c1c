"""A real `bentoml serve` process of the service for HTTP tests, with its own home and database."""

from __future__ import annotations

import os
from pathlib import Path

from local_server import LocalServer

TOKENS = {"ana": "token-ana", "ben": "token-ben"}


class ServerProcess(LocalServer):
    """The service on `root` (models/ and data/ are the allowed roots), SQLite unless a URL is given;
    tests may change `env` between `kill()`/`stop()` and the next `start()`."""

    def __init__(self, root: Path, *, database_url: str | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        super().__init__({
            **os.environ,
            "BENTOML_HOME": str(root / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
            "EDITING_SERVICE_HOME": str(root / "home"),
            "EDITING_SERVICE_API_TOKENS": ",".join(f"{n}={t}" for n, t in TOKENS.items()),
            "EDITING_SERVICE_MODEL_ROOTS": str(root / "models"),
            "EDITING_SERVICE_DATA_ROOTS": str(root / "data"),
            "EDITING_SERVICE_DEVICE": "cpu",
            "EDITING_SERVICE_JOB_STALE_S": "4",
            "EDITING_SERVICE_MAX_REQUEST_MB": "1",
            "OMP_NUM_THREADS": "1",
            **({"EDITING_SERVICE_DATABASE_URL": database_url} if database_url else {}),
            **(env or {}),
        }, log_path=root / "server.log")
