"""A fresh PostgreSQL schema per test on the real server (EDITING_SERVICE_TEST_POSTGRES_URL, default the
local server's database `test`). Without a server the PostgreSQL cases are skipped with the reason,
except when the CI variable is set: then they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

POSTGRES_URL = os.environ.get("EDITING_SERVICE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_unreachable: list[str] = []


def _admin() -> sa.Engine:
    engine = sa.create_engine(POSTGRES_URL, poolclass=NullPool, connect_args={"connect_timeout": 3})
    if not _unreachable:
        try:
            with engine.connect():
                pass
        except sa.exc.OperationalError as error:
            _unreachable.append(f"PostgreSQL at {POSTGRES_URL} cannot be reached: {str(error).splitlines()[0]}")
    if _unreachable:
        if os.environ.get("CI"):
            pytest.fail(_unreachable[0] + " (CI is set, so the PostgreSQL cases must run).")
        pytest.skip(_unreachable[0])
    return engine


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Yield a database URL whose search_path is a new, empty schema; drop the schema afterwards."""
    admin = _admin()
    schema = f"test_{uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
