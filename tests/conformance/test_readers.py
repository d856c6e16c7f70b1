"""Readers while the test's own connection holds uncommitted rows, in every cell, serially and under ``-n 2``.

The situation of an app's request handler reading (in a TestClient thread) while the
test's own session holds a write transaction. In every cell the promise is the same:

* a reader, a raw driver connection from ``RAW_DSN`` and a SQLAlchemy engine from
  ``DATABASE_URL``, in another thread, gets the last committed rows without waiting
  (SQLite: busy timeout 0, so a lock would fail it at once; PostgreSQL: a statement
  timeout) and never the uncommitted ones, also when the writer's changes outgrow
  SQLite's page cache;
* under ``clone`` and ``reset`` the writer is a transaction of ``db``; under ``rollback``
  it is the test's outer transaction, which everything ``db`` does joins, so readers see
  none of ``db``'s rows (only the template's); in every strategy a raw connection of the
  test holding a transaction too.

Writers are another matter (SQLite allows one at a time: a second writer waits for the
test's transaction and fails with "database is locked" once its busy timeout runs out;
tests/test_sqlite_backend.py shows it).
"""

from __future__ import annotations

import pytest

from .conftest import Cell, MakeCellProject, report_records

MODES = {"serial": (), "xdist": ("-n", "2")}

READER_TESTS = """
import concurrent.futures, os, sqlite3
import app

STRATEGY = "{strategy}"
# rows enough to outgrow SQLite's page cache (2 MB): a rollback-journal database would then lock readers out
BULK = {{
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
        "INSERT INTO items (name) SELECT 'bulk ' || i || ' ' || hex(zeroblob(2000)) FROM n"
    ),
    "postgresql": (
        "INSERT INTO items (name) SELECT 'bulk ' || i || ' ' || repeat('0', 1000) FROM generate_series(1, 1000) AS i"
    ),
    "mysql": "INSERT INTO items (name) SELECT CONCAT('bulk ', seq, ' ', REPEAT('0', 150)) FROM seq_1_to_1000",
}}
MYSQL_NO_WAIT = "SET SESSION max_statement_time = 2, innodb_lock_wait_timeout = 2"  # MariaDB: seconds
NO_WAIT_MS = 2000  # PostgreSQL: a reader that had to wait fails after this instead of hanging


def raw_connection():
    dsn = os.environ["RAW_DSN"]
    if app.dialect() == "sqlite":
        return sqlite3.connect(dsn, uri=dsn.startswith("file:"), timeout=0)
    if app.dialect() == "mysql":
        conn = app.MySQLConnection(dsn)
        conn.execute(MYSQL_NO_WAIT)
        return conn
    import psycopg
    return psycopg.connect(dsn, options=f"-c statement_timeout={{NO_WAIT_MS}} -c lock_timeout={{NO_WAIT_MS}}")


def raw_reader():
    conn = raw_connection()
    try:
        return sorted(row[0] for row in conn.execute("SELECT name FROM items"))
    finally:
        conn.close()


def engine_reader():
    from sqlalchemy import create_engine, text
    no_wait = {{"timeout": 0}} if app.dialect() == "sqlite" else {{"options": f"-c statement_timeout={{NO_WAIT_MS}}"}}
    if app.dialect() == "mysql":
        no_wait = {{"init_command": MYSQL_NO_WAIT}}
    engine = create_engine(os.environ["DATABASE_URL"], connect_args=no_wait)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT name FROM items")).scalars())
    finally:
        engine.dispose()


def in_another_thread(work):
    # as an app's request handler in a TestClient thread; bounded, so a hang fails instead
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result(timeout=60)


def readers():
    return in_another_thread(lambda: (raw_reader(), engine_reader()))


def committed_rows():
    # what both readers agree is committed now, before the test's writer begins
    raw, engine = readers()
    assert raw == engine
    return raw


def test_readers_while_db_holds_uncommitted_rows(db):
    before = committed_rows()
    db.execute("INSERT INTO items (name) VALUES ('committed by db')")
    # clone, reset: committed at once. rollback: part of the test's outer transaction, so never committed
    committed = before if STRATEGY == "rollback" else sorted(before + ["committed by db"])
    assert readers() == (committed, committed)
    with db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES ('uncommitted')")
        assert readers() == (committed, committed)
        tx.execute(BULK[app.dialect()])
        assert readers() == (committed, committed)
        tx.rollback()
    assert readers() == (committed, committed)


def test_readers_while_a_raw_connection_holds_uncommitted_rows({fixture}):
    before = committed_rows()
    writer = app.raw_connect()  # sqlite3 and psycopg begin a transaction before the INSERT
    try:
        writer.execute("INSERT INTO items (name) VALUES ('uncommitted')")
        assert readers() == (before, before)
        writer.execute(BULK[app.dialect()])
        assert readers() == (before, before)
    finally:
        writer.rollback()
        writer.close()

"""

TESTS = (
    "test_readers_while_db_holds_uncommitted_rows",
    "test_readers_while_a_raw_connection_holds_uncommitted_rows",
)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_readers_get_the_last_committed_rows_while_the_test_holds_a_transaction(
    cell: Cell, mode: str, make_project: MakeCellProject
) -> None:
    pytester = make_project(cell, files={"test_readers.py": READER_TESTS})
    result = pytester.runpytest_subprocess(
        *MODES[mode], "-p", "no:randomly", "-p", "no:cacheprovider", "--dbscope-report=report.json", "-rA"
    )
    records = report_records(pytester)
    failures = "\n".join(result.outlines[-60:])

    assert sorted(records) == sorted(TESTS), failures
    assert {name: record["outcome"] for name, record in records.items()} == dict.fromkeys(TESTS, "passed"), failures
    assert result.ret == pytest.ExitCode.OK, failures
