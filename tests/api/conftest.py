"""Fixtures of the HTTP tests: the tiny world and a running server on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import make_world
from http_server import TOKENS, ServerProcess

from editing_service.client import EditingClient


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def server(world: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(world).start()
    yield process
    process.stop()


@pytest.fixture
def ana(server: ServerProcess) -> Iterator[EditingClient]:
    with EditingClient(server.url, token=TOKENS["ana"]) as client:
        yield client
