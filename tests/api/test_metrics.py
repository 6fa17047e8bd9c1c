"""/metrics and the access log over HTTP: series are keyed by route template, so their number does not
grow with the paths clients invent (with or without a token), and no URL can forge an access-log line."""

from __future__ import annotations

import re
import time

import httpx
from http_server import TOKENS, ServerProcess

AUTH = {"Authorization": f"Bearer {TOKENS['ana']}"}
LABEL = re.compile(r'route="([^"]*)"')


def _invent(server: ServerProcess, start: int, n: int) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for i in range(start, start + n):
            client.get(f"/invented-{i}")  # no token: 401
            client.get(f"/v1/invented/{i}", headers=AUTH)  # no such route: 404
            client.get(f"/v1/jobs/job{i}", headers=AUTH)  # a real route, an unknown job: 404
            client.post(f"/v1/projects/p{i}/jobs", headers=AUTH, json={"kind": "discover"})  # unknown project


def _scrape(server: ServerProcess) -> str:
    answer = httpx.get(server.url + "/metrics", headers=AUTH, timeout=60)
    assert answer.status_code == 200
    return answer.text


def _series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_metrics_series_do_not_grow_with_invented_paths(server: ServerProcess) -> None:
    _invent(server, 0, 5)
    _scrape(server)  # the scrapes themselves are counted from the second one on
    before = _series(_scrape(server))
    _invent(server, 5, 60)
    text = _scrape(server)
    after = _series(text)
    assert len(after) == len(before), sorted(set(after) - set(before))[:10]
    routes = set(LABEL.findall(text))
    assert {"unmatched", "/v1/jobs/{job_id}", "/v1/projects/{project_id}/jobs", "/metrics"} <= routes
    assert all(r == "unmatched" or r.startswith("/") and "invented" not in r for r in routes), routes
    assert "invented" not in text and "job7" not in text
    counts = {line.split(" ")[0]: float(line.split(" ")[1]) for line in after}
    unmatched_401 = 'editing_service_requests_total{method="GET",route="unmatched",status="401"}'
    assert counts[unmatched_401] >= 65


def test_a_newline_in_a_url_cannot_forge_an_access_log_line(server: ServerProcess) -> None:
    forged = "2026-01-01T00:00:00+0000 [INFO] [entry_service:editing_service:1] 10.0.0.1 FORGED"
    answer = httpx.get(server.url + "/v1/jobs/x%0A" + forged.replace(" ", "%20") + "%0D%0Aend", headers=AUTH)
    assert answer.status_code in (404, 422)
    log = ""
    for _ in range(50):  # the access line is written after the answer is sent
        log = server.log_path.read_text(errors="replace")
        if "\\x0d\\x0aend" in log:
            break
        time.sleep(0.1)
    assert not any(line.startswith(forged) for line in log.splitlines())
    assert "/v1/jobs/x\\x0a2026-01-01" in log and "\\x0d\\x0aend" in log
