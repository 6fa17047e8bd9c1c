"""The Database: engine settings per backend, sessions that commit or roll back, timestamps in UTC."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select

from editing_service.store import Database, Invalid, create_project, get_project, list_projects
from editing_service.store.database import UNSUPPORTED_DATABASE
from editing_service.store.tables import ProjectRow


def test_for_directory_makes_an_sqlite_file_with_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = Database.for_directory(home)
    db.create_all()
    try:
        assert db.dialect == "sqlite"
        assert (home / "service.db").is_file()
        with db.engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == 30_000
            assert pragma("foreign_keys") == 1
    finally:
        db.dispose()


def test_postgresql_urls_get_the_psycopg_driver_and_pre_ping() -> None:
    db = Database("postgresql://someone:secret@db.example:5432/service")
    assert db.engine.url.drivername == "postgresql+psycopg"
    assert db.engine.pool._pre_ping
    assert "secret" not in db.url


def test_other_databases_are_refused() -> None:
    with pytest.raises(Invalid) as raised:
        Database("mysql+pymysql://root@localhost/service")
    assert str(raised.value) == UNSUPPORTED_DATABASE.format(
        backend="mysql", url="mysql+pymysql://root@localhost/service"
    )


def test_a_session_commits_on_success_and_rolls_back_on_error(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        session.add(ProjectRow(id="kept", name="a", model_ref=None, spec_ref="s", artifacts_dir="d"))
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(ProjectRow(id="dropped", name="b", model_ref=None, spec_ref="s", artifacts_dir="d"))
        session.flush()
        raise RuntimeError("boom")
    with db.session(readonly=True) as session:
        assert session.scalars(select(ProjectRow.id)).all() == ["kept"]


def test_timestamps_come_back_timezone_aware_in_utc(db: Database, tmp_path: Path) -> None:
    project = create_project(db, name="p", model_ref=None, spec_ref="s", artifacts_root=tmp_path)
    again = get_project(db, project.id)
    assert again.created_at.tzinfo == UTC
    assert again.created_at == project.created_at


def test_in_memory_sqlite_keeps_its_data_across_sessions(tmp_path: Path) -> None:
    db = Database("sqlite://")
    db.create_all()
    create_project(db, name="p", model_ref=None, spec_ref="s", artifacts_root=tmp_path)
    assert list_projects(db)[1] == 1
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ProjectRow)) == 1
    db.dispose()
