"""The festival's old test setup, before dbscope: ONE shared SQLite file for every test
and every pytest-xdist worker (``data/test-integration.db``).

Kept only so that ``demo.py`` can run the very same tests under it and under dbscope.
``-c legacy/pytest.ini`` selects it: that file disables dbscope (``-p no:dbscope``) and
loads this module as a plugin in its place. It is a shared-database conftest of the kind
dbscope replaces:

- ``DATABASE_URL`` is forced to the shared file and remote credentials are deleted;
- before each test file, the migrations run if the schema is not there yet (a
  module-scoped autouse fixture);
- before every test the tables are emptied and the seed data inserted again (an autouse
  cleanup fixture): from a hand-kept list of tables that has fallen behind the schema,
  and with a failure only logged as a warning, so the test runs on whatever was left;
- ``db`` is a client (the same ``dbscope.Client`` API: ``execute``, ``transaction``,
  ``batch``) on a new connection to that file, closed after the test.

Run serially, what the hand-kept cleanup misses already fails (leftover newsletter
addresses, a table a test created). Run with ``-n 2`` and the two workers share the file
as well: both race to create the schema ("table users already exists"), one worker's
cleanup deletes the other's rows mid-test, and writes wait for the other worker's lock
("database is locked"). The busy timeout is kept small (``LEGACY_BUSY_TIMEOUT_MS``,
100 ms) so the demo ends quickly; a longer one turns some lock errors into slow tests, not
passing ones -- the UNIQUE and wrong-data failures do not depend on it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from festival import migrate

from dbscope import Client

HERE = Path(__file__).resolve().parent.parent  # examples/festival
DB_FILE = HERE / "data" / "test-integration.db"
SEED = (HERE / "seed.sql").read_text()
BUSY_TIMEOUT_S = int(os.environ.get("LEGACY_BUSY_TIMEOUT_MS", "100")) / 1000

# What the cleanup empties, children first so the foreign keys let every DELETE through.
# Like every hand-kept list it lags the schema: newsletter_subscribers (migration 0005)
# was never added, so addresses from earlier tests stay behind.
TABLES = [
    "tickets",
    "payments",
    "order_items",
    "orders",
    "cart_items",
    "carts",
    "registrations",
    "logs",
    "users",
    "products",
    "events",
]

log = logging.getLogger("legacy")

# -- environment: every test and worker on the shared file, no remote credentials ------------

DB_FILE.parent.mkdir(exist_ok=True)
os.environ["DATABASE_URL"] = f"sqlite:///{DB_FILE}"
os.environ["FESTIVAL_DB_BUSY_TIMEOUT_MS"] = str(int(BUSY_TIMEOUT_S * 1000))
for name in ("TURSO_AUTH_TOKEN", "TURSO_DATABASE_URL", "FESTIVAL_STATEMENT_TIMEOUT_MS"):
    os.environ.pop(name, None)


class _SQLite:
    """What dbscope.Client needs to know about SQL: SQLite takes ``?``/``:name`` as they are."""

    name = "sqlite"

    def translate(self, sql: str, args: Any) -> tuple[str, Any]:
        return sql, args

    def begin(self) -> str:
        return "BEGIN"


def connect(autocommit: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(
        DB_FILE, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None if autocommit else ""
    )
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _statements(sql: str) -> list[str]:
    """The statements of a plain script (no triggers): comments dropped, split at ';'."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dbscope(**options): dbscope settings for one test (ignored here)")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def legacy_schema() -> None:
    """Before each test file: run the migrations not applied yet (festival.migrate)."""
    conn = connect()
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # the usual "WAL for concurrency": still one writer at a time
        migrate.apply(conn)
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def clean_database(legacy_schema: None) -> None:
    """Before each test: empty the tables and put the seed data back -- or warn and go on."""
    conn = connect()
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            conn.execute(f"DELETE FROM {table}")
        for statement in _statements(SEED):
            conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        # a common shortcut in shared-database setups: log the failed cleanup, run the test anyway
        log.warning("cleanup failed: %s", exc)
    finally:
        conn.close()


@pytest.fixture
def db(clean_database: None) -> Iterator[Client]:
    """A client on the shared file, on a connection of its own."""
    client = Client(connect, _SQLite(), test_name="legacy")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def db_url() -> str:
    return os.environ["DATABASE_URL"]


@pytest.fixture(name="dbscope_scope")
def no_dbscope_scope() -> None:
    pytest.skip("needs dbscope")


@pytest.fixture(name="dbscope")
def no_dbscope() -> None:
    pytest.skip("needs dbscope")
