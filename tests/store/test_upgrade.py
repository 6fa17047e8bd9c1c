"""A database written before discoveries were versioned: `create_all` adds the new tables and columns,
and its projects, features and flags keep working as the unversioned discovery."""

from __future__ import annotations

from pathlib import Path

from editing_service.store import (
    Database,
    create_project,
    current_discovery,
    get_project,
    list_features,
    list_flags,
    replace_features,
    set_flag,
)

ADDED_COLUMNS = {
    "projects": ("upload_dir", "upload_removed_at", "deleted_at", "deleted_by"),
    "features": ("sae_digest",),
    "flags": ("sae_digest", "discovery_id"),
    "edits": ("discovery_id", "artifacts_removed_at"),
}


def _downgrade(db: Database) -> None:
    """Drop what this version added, as a database of the previous version lacks it."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE discoveries")
        connection.exec_driver_sql("DROP TABLE events")
        for table, columns in ADDED_COLUMNS.items():
            for column in columns:
                connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")


def test_an_old_database_is_upgraded_in_place(db: Database, tmp_path: Path) -> None:
    project = create_project(db, name="old", model_ref=None, spec_ref="s", artifacts_root=tmp_path)
    replace_features(db, project.id, [{"site": "blocks.0.out", "feature": 7, "score": 1.0, "rank": 1}])
    set_flag(db, project_id=project.id, site="blocks.0.out", feature=7, state="spurious", rationale="r",
             reviewer="Ana", principal="ana")
    _downgrade(db)
    db.create_all()
    db.create_all()  # and again: nothing left to add
    assert get_project(db, project.id) == project
    assert current_discovery(db, project.id) is None
    [flag] = list_flags(db, project.id)
    assert (flag.state, flag.current, flag.sae_digest, flag.discovery_id) == ("spurious", True, "", None)
    assert list_features(db, project.id)[0][0].flag == flag
