"""The festival's database service: a lazily created module-level singleton, as many apps have.

The URL comes from ``DATABASE_URL`` at first use, never at import, so a test suite can
point the app at another database by changing the environment and calling
:func:`reset_for_testing`. In production that is a file (``sqlite:///festival.db``);
under dbscope it is the current test's in-memory database
(``sqlite:///file:/dbscope_...?vfs=memdb&uri=true``), which every thread of the process
reaches through that URL.

    from festival.database import get_database
    db = get_database()
    with db.write() as conn:          # BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)
        conn.execute(text("UPDATE products SET stock = stock - 1 WHERE id = :id"), {"id": "prod-123"})

Settings (environment, read when the singleton is created):

- ``DATABASE_URL``: a SQLAlchemy URL (default ``sqlite:///festival.db``)
- ``FESTIVAL_DB_BUSY_TIMEOUT_MS``: how long a statement waits for another writer (default 5000)
- ``FESTIVAL_STATEMENT_TIMEOUT_MS``: statements running longer are interrupted and raise
  :class:`StatementTimeout` (default: no limit)
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

__all__ = [
    "Database",
    "DatabaseClosedError",
    "StatementTimeout",
    "get_database",
    "reset_for_testing",
]

DEFAULT_URL = "sqlite:///festival.db"

_ids = itertools.count(1)


class StatementTimeout(Exception):
    """A statement ran longer than FESTIVAL_STATEMENT_TIMEOUT_MS and was interrupted."""


class DatabaseClosedError(Exception):
    """The service was used after close(): get a fresh one with get_database()."""


class Database:
    """A SQLAlchemy engine with SQLite set up the way the festival needs it.

    - foreign keys on, a busy timeout, and transactions the app controls itself:
      ``read()`` begins a deferred transaction, ``write()`` a ``BEGIN IMMEDIATE`` one, so
      two writers queue for the write lock instead of deadlocking on a lock upgrade;
    - an optional statement timeout, enforced with SQLite's progress handler.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, statement_timeout_ms: int | None = None) -> None:
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.statement_timeout_ms = statement_timeout_ms
        self.connection_id = next(_ids)
        self.created_at = time.time()
        self._closed = False
        self._queries = 0
        self.engine: Engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        event.listen(self.engine, "connect", self._on_connect)
        event.listen(self.engine, "begin", self._on_begin)
        event.listen(self.engine, "before_cursor_execute", self._before_execute)
        event.listen(self.engine, "after_cursor_execute", self._after_execute)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Database:
        env = os.environ if environ is None else environ
        timeout = env.get("FESTIVAL_STATEMENT_TIMEOUT_MS")
        return cls(
            env.get("DATABASE_URL") or DEFAULT_URL,
            busy_timeout_ms=int(env.get("FESTIVAL_DB_BUSY_TIMEOUT_MS", "5000")),
            statement_timeout_ms=int(timeout) if timeout else None,
        )

    # -- SQLAlchemy events ----------------------------------------------------------

    def _on_connect(self, dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver never begins on its own; _on_begin does
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        deadline: list[float | None] = [None]
        record.info["deadline"] = deadline

        def over_time() -> int:
            limit = deadline[0]
            return 1 if limit is not None and time.monotonic() > limit else 0

        dbapi_connection.set_progress_handler(over_time, 1000)

    def _on_begin(self, conn: Connection) -> None:
        immediate = conn.get_execution_options().get("festival_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def _before_execute(
        self, conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        self._queries += 1
        if self.statement_timeout_ms is not None:
            conn.info["deadline"][0] = time.monotonic() + self.statement_timeout_ms / 1000

    def _after_execute(
        self, conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info["deadline"][0] = None

    # -- use ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(
                f"database service #{self.connection_id} ({self.url}) is closed; call get_database() again"
            )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a deferred transaction, rolled back (released) at the end."""
        self._check_open()
        with _timeouts(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a ``BEGIN IMMEDIATE`` transaction: committed, or rolled back on error."""
        self._check_open()
        with _timeouts(), self.engine.connect().execution_options(festival_immediate=True) as conn, conn.begin():
            yield conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one statement in its own transaction; return the rows as dicts."""
        with self.write() as conn:
            result = conn.execute(text(sql), dict(params or {}))
            return [dict(row._mapping) for row in result] if result.returns_rows else []

    def health_check(self) -> bool:
        try:
            with self.read() as conn:
                return conn.execute(text("SELECT 1")).scalar() == 1
        except Exception:  # noqa: BLE001 -- any failure means "not healthy"
            return False

    def get_connection_stats(self) -> dict[str, Any]:
        """The service's id, URL, open/closed state, pooled connections and query count, for a debug endpoint."""
        pool = self.engine.pool
        return {
            "connection_id": self.connection_id,
            "url": self.url,
            "closed": self._closed,
            "checked_out": getattr(pool, "checkedout", lambda: 0)(),
            "pooled": getattr(pool, "checkedin", lambda: 0)(),
            "queries": self._queries,
        }

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"<Database #{self.connection_id} {self.url} {'closed' if self._closed else 'open'}>"


@contextmanager
def _timeouts() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if "interrupted" in str(exc.orig):
            raise StatementTimeout("the statement ran past FESTIVAL_STATEMENT_TIMEOUT_MS and was interrupted") from exc
        raise


# -- the singleton ----------------------------------------------------------------------

_instance: Database | None = None
_lock = threading.Lock()


def get_database() -> Database:
    """The process's database service, created from the environment on first use."""
    global _instance
    database = _instance
    if database is None or database.closed:
        with _lock:
            if _instance is None or _instance.closed:
                _instance = Database.from_env()
            database = _instance
    return database


def reset_for_testing() -> None:
    """Close the singleton and forget it: the next get_database() reads DATABASE_URL again.

    Run at every test boundary (dbscope_reset_hooks), so no test ever talks to the
    previous test's database or keeps its connections open.
    """
    global _instance
    with _lock:
        database, _instance = _instance, None
    if database is not None:
        database.close()
