"""Projects: create, read, list with paging, and their errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from editing_service.store import Database, Invalid, NotFound, create_project, get_project, list_projects
from editing_service.store.paging import INVALID_LIMIT, INVALID_OFFSET, MAX_LIMIT
from editing_service.store.projects import EMPTY_NAME, EMPTY_SPEC, NAME_TOO_LONG, PROJECT_NOT_FOUND


def test_a_project_round_trips(db: Database, tmp_path: Path) -> None:
    created = create_project(
        db,
        name="surgeon vs nurse",
        model_ref="/models/bert",
        spec_ref="specs/bios.yaml",
        settings={"circuit_top_k": 300, "sites": ["blocks.0.out"]},
        artifacts_root=tmp_path,
    )
    assert len(created.id) == 12
    assert created.artifacts_dir == tmp_path / "projects" / created.id
    assert get_project(db, created.id) == created


def test_the_default_model_is_stored_as_none(db: Database, tmp_path: Path) -> None:
    created = create_project(
        db, name="p", model_ref=None, spec_ref="biasbios_surgeon_nurse", artifacts_root=tmp_path
    )
    assert get_project(db, created.id).model_ref is None
    assert get_project(db, created.id).settings == {}


def test_projects_are_listed_newest_first_by_page_with_the_total(db: Database, tmp_path: Path) -> None:
    ids = [
        create_project(db, name=f"p{i}", model_ref=None, spec_ref="s", artifacts_root=tmp_path).id
        for i in range(5)
    ]
    page, total = list_projects(db, limit=2, offset=1)
    assert total == 5
    assert [p.id for p in page] == ids[::-1][1:3]
    assert list_projects(db, offset=10) == ([], 5)


def test_project_errors_say_what_is_wrong(db: Database, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as raised:
        get_project(db, "nope")
    assert str(raised.value) == PROJECT_NOT_FOUND.format(id="nope") == "Project 'nope' does not exist."
    with pytest.raises(Invalid, match=re.escape(EMPTY_NAME)):
        create_project(db, name=" ", model_ref=None, spec_ref="s", artifacts_root=tmp_path)
    with pytest.raises(Invalid, match=re.escape(NAME_TOO_LONG.format(max=200, length=201))):
        create_project(db, name="n" * 201, model_ref=None, spec_ref="s", artifacts_root=tmp_path)
    with pytest.raises(Invalid, match=re.escape(EMPTY_SPEC)):
        create_project(db, name="p", model_ref=None, spec_ref="", artifacts_root=tmp_path)
    with pytest.raises(Invalid) as raised:
        list_projects(db, limit=0)
    assert str(raised.value) == INVALID_LIMIT.format(max=MAX_LIMIT, value=0)
    with pytest.raises(Invalid) as raised:
        list_projects(db, offset=-1)
    assert str(raised.value) == INVALID_OFFSET.format(value=-1)
