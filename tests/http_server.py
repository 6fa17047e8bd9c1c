"""A real `bentoml serve` process of the service for HTTP tests, with its own home and database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

SERVICE = "editing_service.api.service:EditingService"
TOKENS = {"ana": "token-ana", "ben": "token-ben"}
STARTUP_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """Start, kill (as a crash would) and restart a service process on one home and database."""

    def __init__(self, root: Path, *, database_url: str | None = None, env: dict[str, str] | None = None,
                 target: str = SERVICE) -> None:
        self.root, self.target = root, target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.env = {
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
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", self.target, "--host", "127.0.0.1", "--port",
             str(self.port)],
            env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"server not ready after {STARTUP_S} s:\n{self.log.read_text()[-4000:]}")

    def _tree(self) -> list[psutil.Process]:
        """The server and every process under it (BentoML's workers run in sessions of their own)."""
        try:
            parent = psutil.Process(self.process.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the server and its workers: no clean shutdown, as in a crash."""
        if self.process is not None:
            for process in self._tree():
                process.kill()
            self.process.wait(30)
            psutil.wait_procs(self._tree(), timeout=30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL whatever is left after 40 s."""
        if self.process is not None and self.process.poll() is None:
            tree = self._tree()
            self.process.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(tree, timeout=40)
            for process in alive:
                process.kill()
            self.process.wait(30)
        self.process = None
