"""The expected answer of every route of /docs.json to each kind of caller: the one table the role
matrix test walks (tests/api/test_access.py). A route missing here, or a row naming no route, fails it.

Callers: none (no token), service, outsider (a reviewer that is no member of the project), viewer
and reviewer (members of the project with those roles), admin. Path parameters name the world that
test builds: a discovered project with a finished edit, the members above, a finished discover job;
the upload and project deletions act on projects of their own.
"""

from __future__ import annotations

CALLERS = ("none", "service", "outsider", "viewer", "reviewer", "admin")

# method, path (as in /docs.json):                          none  svc  out  vic  rev  adm
EXPECTED: list[tuple[str, str, int, int, int, int, int, int]] = [
    ("GET", "/healthz",                                       200, 200, 200, 200, 200, 200),
    ("GET", "/livez",                                         200, 200, 200, 200, 200, 200),
    ("GET", "/readyz",                                        200, 200, 200, 200, 200, 200),
    ("GET", "/metrics",                                       401, 200, 200, 200, 200, 200),
    ("GET", "/v1/me",                                         401, 200, 200, 200, 200, 200),
    ("GET", "/v1/projects",                                   401, 403, 200, 200, 200, 200),
    ("POST", "/v1/projects",                                  401, 403, 403, 403, 403, 201),
    ("POST", "/v1/projects/upload",                           401, 403, 403, 403, 403, 201),
    ("GET", "/v1/projects/{project_id}",                      401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/members",              401, 403, 404, 200, 200, 200),
    ("PUT", "/v1/projects/{project_id}/members/{principal}",  401, 403, 403, 403, 403, 200),
    ("DELETE", "/v1/projects/{project_id}/members/{principal}", 401, 403, 403, 403, 403, 204),
    ("GET", "/v1/tokens",                                     401, 403, 403, 403, 403, 200),
    ("POST", "/v1/tokens",                                    401, 403, 403, 403, 403, 201),
    ("DELETE", "/v1/tokens/{token_id}",                       401, 403, 403, 403, 403, 200),
    ("GET", "/v1/events",                                     401, 403, 403, 403, 403, 200),
    ("GET", "/v1/projects/{project_id}/events",               401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/discoveries",          401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/discoveries/{discovery_id}", 401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/jobs",                 401, 403, 404, 200, 200, 200),
    ("POST", "/v1/projects/{project_id}/jobs",                401, 403, 403, 403, 403, 202),
    ("GET", "/v1/jobs/{job_id}",                              401, 403, 404, 200, 200, 200),
    ("POST", "/v1/jobs/{job_id}/cancel",                      401, 403, 403, 403, 403, 409),
    ("GET", "/v1/projects/{project_id}/features",             401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/features/{site}/{feature}", 401, 403, 404, 200, 200, 200),
    ("PUT", "/v1/projects/{project_id}/features/{site}/{feature}/flag", 401, 403, 404, 403, 200, 200),
    ("DELETE", "/v1/projects/{project_id}/features/{site}/{feature}/flag", 401, 403, 404, 403, 204, 204),
    ("GET", "/v1/projects/{project_id}/flags",                401, 403, 404, 200, 200, 200),
    ("POST", "/v1/projects/{project_id}/suggestions/apply",   401, 403, 404, 403, 200, 200),
    ("GET", "/v1/projects/{project_id}/audit",                401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/flags.yaml",           401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/audit.csv",            401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/discovery",            401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/circuit",              401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/edits",                401, 403, 404, 200, 200, 200),
    ("POST", "/v1/projects/{project_id}/edits",               401, 403, 404, 403, 202, 202),
    ("GET", "/v1/projects/{project_id}/edits/{edit_id}",      401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/edits/{edit_id}/report", 401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/edits/{edit_id}/report.html", 401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/edits/{edit_id}/model", 401, 403, 404, 200, 200, 200),
    ("GET", "/v1/projects/{project_id}/edits/{edit_id}/model_card.md", 401, 403, 404, 200, 200, 200),
    ("POST", "/v1/projects/{project_id}/edits/{edit_id}/explain", 401, 403, 404, 200, 200, 200),
    ("POST", "/v1/projects/{project_id}/edits/{edit_id}/predict", 401, 200, 404, 200, 200, 200),
    # deletions last: they remove the world's edit, an uploaded file, and a project of its own
    ("DELETE", "/v1/projects/{project_id}/edits/{edit_id}",   401, 403, 403, 403, 403, 204),
    ("DELETE", "/v1/projects/{project_id}/upload",            401, 403, 403, 403, 403, 204),
    ("DELETE", "/v1/projects/{project_id}",                   401, 403, 403, 403, 403, 204),
]


def expectations() -> dict[tuple[str, str], dict[str, int]]:
    """(method, path) -> caller -> the expected status."""
    table: dict[tuple[str, str], dict[str, int]] = {}
    for method, path, *statuses in EXPECTED:
        assert (method, path) not in table, f"{method} {path} is in the table twice"
        table[(method, path)] = dict(zip(CALLERS, statuses, strict=True))
    return table
