"""Fixtures of the browser tests: one server process on the workbench world, one discovered project
(shared by the session), and headless Chromium from Debian driven by Playwright.

Chromium is the system one (`apt-get install chromium`, done by .ci/run); `playwright install` is never
needed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import TINY_SETTINGS, spec_for
from http_server import TOKENS, ServerProcess
from workbench_world import (
    PROJECT_NAME,
    VIEWER,
    VIEWER_TOKEN,
    Discovered,
    make_workbench_world,
)

from editing_service.artifacts import ArtifactDir
from editing_service.client import EditingClient
from editing_service.store import Database, current_artifacts_dir, get_project

ANSWERED_4XX = "Failed to load resource: the server responded with a status of 4"  # the API's refusals, shown
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbench_world(tmp_path_factory.mktemp("workbench"))


@pytest.fixture(scope="session")
def server(world: Path) -> Iterator[ServerProcess]:
    tokens = [f"{name}={token}" for name, token in TOKENS.items()] + [f"{VIEWER}:viewer={VIEWER_TOKEN}"]
    process = ServerProcess(world, env={"EDITING_SERVICE_API_TOKENS": ",".join(tokens)}).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[EditingClient]:
    with EditingClient(server.url, token=TOKENS["ana"]) as ana:
        yield ana


@pytest.fixture(scope="session")
def discovered(server: ServerProcess, client: EditingClient) -> Discovered:
    """A project discovered over the API, with a circuit.json."""
    root = server.root
    project = client.create_project(name=PROJECT_NAME, model=str(root / "models" / "bert"),
                                    dataset={"inline": spec_for(root)}, settings=TINY_SETTINGS)
    client.wait(client.discover(project["id"])["id"], timeout=300, poll=0.5)
    db = Database(f"sqlite:///{root / 'home' / 'service.db'}")
    folder = current_artifacts_dir(db, project["id"])
    project_folder = Path(get_project(db, project["id"]).artifacts_dir)
    db.dispose()
    assert ArtifactDir(folder).circuit.is_file(), "the discovery wrote no circuit.json"
    client.set_member(project["id"], VIEWER, role="viewer")
    return Discovered(id=project["id"], folder=folder, project_folder=project_folder)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the dev extra installs playwright")
    if CHROMIUM is None:
        pytest.skip("no chromium binary: apt-get install -y chromium (.ci/run does)")
    with playwright_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser: object, server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh tab (own sessionStorage) on the workbench, signed out, collecting script errors.
    Tests marked `bypass_csp` may inject scripts (axe-core)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True,
                                  bypass_csp=request.node.get_closest_marker("bypass_csp") is not None)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda err: tab.errors.append(str(err)))
    tab.on("console", lambda msg: tab.errors.append(msg.text)
           if msg.type == "error" and not msg.text.startswith(ANSWERED_4XX) else None)
    tab.goto(server.url + "/ui/")
    yield tab
    context.close()
