"""Fixtures of the store tests: every test runs on SQLite (a file) and on PostgreSQL (a fresh schema).

PostgreSQL schemas come from `tests/postgres.py` (skipped without a server, failed in CI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres import fresh_schema

from editing_service.store import Database, ProjectRecord, create_project, replace_features


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, private to the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    with fresh_schema() as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def project(db: Database, tmp_path: Path) -> ProjectRecord:
    return create_project(
        db,
        name="surgeon vs nurse",
        model_ref=None,
        spec_ref="biasbios_surgeon_nurse",
        artifacts_root=tmp_path,
    )


def _feature_rows(count: int, *, site: str = "blocks.0.out") -> list[dict[str, Any]]:
    """Circuit rows ranked 1..count with scores alternating in sign and growing in size; every third is
    suggested by the lexicon rule, every fifth by the protected-attribute rule; odd ranks carry a card."""
    rows = []
    for rank in range(1, count + 1):
        suggestions = [
            kind for kind, every in (("lexicon", 3), ("protected_attribute", 5)) if rank % every == 0
        ]
        rows.append(
            {
                "site": site,
                "feature": 100 + rank,
                "score": (-1) ** rank * rank / 10,
                "rank": rank,
                "label": f"feature {rank}",
                "suggestions": suggestions,
                "card": {"top_tokens": ["she", "her"], "rank": rank} if rank % 2 else None,
            }
        )
    return rows


@pytest.fixture
def feature_rows() -> Callable[..., list[dict[str, Any]]]:
    """`feature_rows(count, site=...)`: circuit rows (see _feature_rows)."""
    return _feature_rows


@pytest.fixture
def with_features(db: Database, project: ProjectRecord) -> Callable[..., list[dict[str, Any]]]:
    """Store circuit rows (by default 12 at blocks.0.out) in the project and return them."""

    def store(rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        rows = _feature_rows(12) if rows is None else rows
        replace_features(db, project.id, rows)
        return rows

    return store
