"""The service as a local `bentoml serve` subprocess: started on a free port and ready once /readyz
answers, stopped as Kubernetes stops a pod (SIGTERM, then SIGKILL) or killed as a crash would.

BentoML's worker processes run in sessions of their own, so signals go to the whole process tree.
Used by the HTTP tests and the serving benchmarks (benchmarks/serve*.py put tests/ on their path); it
needs psutil, a development dependency only.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import psutil

SERVICE = "editing_service.api.service:EditingService"
NOT_READY = "The server was not ready after {seconds:.0f} s:\n{log}"
EXITED = "The server exited with {code} while starting:\n{log}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """One server process; `env` (the process's whole environment) is read at each `start()`."""

    def __init__(self, env: Mapping[str, str], *, log_path: Path, port: int = 0, startup_s: float = 90.0,
                 stop_s: float = 40.0, cwd: Path | None = None) -> None:
        self.env = dict(env)
        self.log_path, self.startup_s, self.stop_s, self.cwd = log_path, startup_s, stop_s, cwd
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def start(self) -> LocalServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(EXITED.format(code=self.process.returncode, log=self.log_tail()))
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(NOT_READY.format(seconds=self.startup_s, log=self.log_tail()))

    def tree(self) -> list[psutil.Process]:
        """The server and every process under it."""
        if self.process is None:
            return []
        try:
            parent = psutil.Process(self.process.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the server's processes."""
        total = 0.0
        for process in self.tree():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        """SIGTERM the tree (the service hands its running job back), SIGKILL what is left after `stop_s`."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the tree: no clean shutdown, as in a crash."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        tree = self.tree()
        for process in tree:
            try:
                process.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(tree, timeout=self.stop_s)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.process.wait(10)
        self.process = None
