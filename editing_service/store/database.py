"""The database: an engine for SQLite (the default, one file) or PostgreSQL (shared by replicas), and sessions.

SQLite connections use WAL (readers never wait for the writer), a 30 s busy timeout and foreign keys.
Their transactions are opened by the store itself: `BEGIN IMMEDIATE` for sessions that may write, so
that a transaction which reads then writes holds the write lock from its first read (no lost updates,
no "database is locked" on upgrading a read lock), and a plain deferred `BEGIN` for read-only sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateColumn

from editing_service.store.errors import Invalid
from editing_service.store.tables import Base

SQLITE_BUSY_TIMEOUT_S = 30.0
DATABASE_FILE = "service.db"
UNSUPPORTED_DATABASE = "The store runs on SQLite or PostgreSQL, not {backend!r} (database URL {url})."

_READONLY = "editing_service_readonly"


class Database:
    """One engine (and its connection pool) for one database URL."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            self.engine = _sqlite_engine(parsed)
        elif backend == "postgresql":
            self.engine = create_engine(parsed, pool_pre_ping=True)
        else:
            raise Invalid(UNSUPPORTED_DATABASE.format(backend=backend, url=parsed.render_as_string()))
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )

    @classmethod
    def for_directory(cls, home: Path) -> Database:
        """The SQLite database of a service home directory (`home/service.db`), creating the directory."""
        home.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{(home / DATABASE_FILE).resolve()}")

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def create_all(self) -> None:
        """Create the tables that do not exist yet, and add the columns that existing tables lack.

        Columns added after a table's first release are nullable or have a server default (see
        tables.py), so adding them to a database written by an older version keeps its rows valid.
        """
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        present = {name: {c["name"] for c in inspect(self.engine).get_columns(name)}
                   for name in Base.metadata.tables}
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if column.name in present[table.name]:
                    continue
                ddl = CreateColumn(column).compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as connection:
                        connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
                except DBAPIError:  # another replica starting at the same time added it first
                    if column.name not in {c["name"] for c in inspect(self.engine).get_columns(table.name)}:
                        raise

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises.

        `readonly=True` sessions never commit; on SQLite they read a snapshot without taking the write lock.
        """
        with (self._reader if readonly else self._writer)() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            if readonly:
                session.rollback()
            else:
                session.commit()

    def dispose(self) -> None:
        """Close every pooled connection (the Database can still be used: the pool reopens them)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        # An in-memory database lives as long as its one connection.
        poolclass=StaticPool if in_memory else None,
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 module from opening transactions on its own: _begin_sqlite_transaction does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    readonly = connection.get_execution_options().get(_READONLY, False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
