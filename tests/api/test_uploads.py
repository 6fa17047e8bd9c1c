"""Uploaded data over HTTP: a refused upload leaves nothing on disk; an accepted one can be deleted alone
(the project's results stay, new jobs are refused) or with its project."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_world import TINY_SETTINGS, spec_for
from http_server import ServerProcess

from editing_service.client import APIError, EditingClient


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _refused(call, *args, **kwargs) -> int:
    with pytest.raises(APIError) as info:
        call(*args, **kwargs)
    return info.value.status


def test_a_refused_upload_leaves_nothing(ana: EditingClient, server: ServerProcess, tmp_path: Path) -> None:
    home, data = server.root / "home", server.root / "data" / "bios.csv"
    before = (_files(home / "uploads"), _files(home / "specs"))
    spec = {**spec_for(server.root), "source": {"kind": "file"}}
    bad_column = {**spec, "text_column": "no_such_column"}
    assert _refused(ana.upload_project, name="u", spec=bad_column, data=data, settings=TINY_SETTINGS) == 400
    assert _refused(ana.upload_project, name="u", spec=spec, data=data, model=str(tmp_path)) == 403
    assert _refused(ana.upload_project, name="u", spec=spec, data=data, settings={"sae": {"d_sae": -1}}) == 400
    assert (_files(home / "uploads"), _files(home / "specs")) == before


def test_uploaded_data_is_deleted_alone_or_with_its_project(ana: EditingClient, server: ServerProcess) -> None:
    home = server.root / "home"
    spec = {**spec_for(server.root), "source": {"kind": "file"}}
    before = set(_files(home / "uploads"))
    project = ana.upload_project(name="uploaded", spec=spec, data=server.root / "data" / "bios.csv",
                                 model=str(server.root / "models" / "bert"), settings=TINY_SETTINGS)
    pid = project["id"]
    assert project["upload"] == "kept"
    [upload] = set(_files(home / "uploads")) - before
    ana.delete_upload(pid)
    assert not upload.exists() and ana.project(pid)["upload"] == "deleted"
    assert _refused(ana.delete_upload, pid) == 404
    assert _refused(ana.discover, pid) == 409
    assert [(e["action"], e["principal"]) for e in ana.events(pid)] == [("project_created", "ana"),
                                                                        ("upload_deleted", "ana")]

    second = ana.upload_project(name="again", spec=spec, data=server.root / "data" / "bios.csv",
                                model=str(server.root / "models" / "bert"), settings=TINY_SETTINGS)
    spec_folder = (home / second["dataset"]).parent  # the dataset may be named relative to the home
    [second_upload] = set(_files(home / "uploads")) - before
    ana.delete_project(second["id"])
    assert not spec_folder.exists() and not second_upload.parent.exists()
    assert _refused(ana.project, second["id"]) == 404
    assert second["id"] not in {p["id"] for p in ana.projects(limit=500)["items"]}
    assert [e["action"] for e in ana.events(second["id"])] == ["project_created", "project_deleted"]
