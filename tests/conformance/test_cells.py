"""Every isolation promise, in every (backend x strategy) cell, serially and under ``-n 2``.

One pytest run per cell and mode of one project (conftest.py's ``CELL_FILES``), and every
promise below is checked on that run: one run rather than one per promise, because a run
under ``-n 2`` starts three pytest processes, and that is most of what this suite costs.

**Isolation.** Commits through the app's own engine (sync and async SQLAlchemy), a raw
driver connection, ``db``, ``db_engine`` and ``db_async_engine`` leave nothing for the next
test and ids start again; schema changes are undone or the test that made them is named;
a connection left open is a leak of its test and ``--dbscope-fail-on-leak`` fails the run;
a transaction left open is the error of the test that left it. Under ``-n 2`` each file
runs on one worker (``--dist loadfile``), so the order within a file holds while the two
workers run different files side by side.

**Readers while the test's own connection holds uncommitted rows** (``test_readers.py`` of
the project): an app's request handler reading (in a TestClient thread) while the test's
own session holds a write transaction. In every cell the promise is the same:

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

**A kept database opens as printed** (``--dbscope-keep-failed``, ``test_failing.py`` of the
project). Under ``clone`` a failed test's database is kept and the printed value opens in
``sqlite3``, ``psql`` or PyMySQL as it stands, showing the test's rows; on a throwaway
server (removed with the run) and under ``reset``/``rollback`` (the worker's database is
restored for the next test) nothing can be kept, and the line says so instead of printing
an address that will not open. Under ``-n 2`` the value travels to the controller in the
test's report record.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from pgsupport import drop_if_kept

from .conftest import Cell, MakeCellProject, read_records

MODES = {"serial": (), "xdist": ("-n", "2", "--dist", "loadfile")}
OPTIONS = (
    "-p",
    "no:randomly",
    "-p",
    "no:cacheprovider",
    "--dbscope-report=report.json",
    "--dbscope-fail-on-leak",
    "--dbscope-keep-failed",
    "-rA",
)
READER_TESTS = (
    "test_readers_while_db_holds_uncommitted_rows",
    "test_readers_while_a_raw_connection_holds_uncommitted_rows",
)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_promise_holds(cell: Cell, mode: str, make_project: MakeCellProject) -> None:
    pytester = make_project(cell)
    result = pytester.runpytest_subprocess(*MODES[mode], *OPTIONS)
    report = pytester.path / "report.json"
    printed = read_records(report)["test_fails_after_writing"]["kept_database"]
    try:
        check_isolation(cell, result, read_records(report))
        check_readers(result, read_records(report, "test_readers.py"))
        check_kept_database(cell, result, printed)
    finally:
        if not printed.startswith("not kept"):
            drop_kept(cell, printed)


def check_isolation(cell: Cell, result: pytest.RunResult, records: dict[str, dict[str, Any]]) -> None:
    outcomes = result.parseoutcomes()
    failures = "\n".join(line for line in result.outlines if "FAILED" in line or "ERROR" in line)

    # 1, 2: every commit test saw only the seeded row and got id 2, whatever the channel
    commit_tests = [name for name in records if name.startswith(("test_a_commit", "test_db_"))]
    assert len(commit_tests) == 6 + 2 + 2 + 2, sorted(records)
    assert [n for n in commit_tests if records[n]["outcome"] != "passed"] == [], failures

    # 3: the schema is the template's again; a test whose change was not undone is named
    assert records["test_4_the_schema_is_the_templates"]["outcome"] == "passed", failures
    changes = (
        "test_1_creates_a_table",
        "test_2_adds_a_column",
        "test_2b_drops_a_table",
        "test_3_creates_a_table_through_db",
    )
    for name in changes:
        if records[name]["outcome"] != "passed":
            result.stdout.fnmatch_lines(
                [f"*test {'*'}{name}{'*'} changed the schema of *restores rows, not the schema*"]
            )

    # 4: the connection left open is its test's leak, and only its test's
    assert records["test_leaves_a_connection_open"]["connections_leaked"] >= 1
    assert records["test_closes_its_connection"]["connections_leaked"] == 0
    result.stdout.fnmatch_lines(
        ["dbscope: failing the run (--dbscope-fail-on-leak): * test(s) leaked", "*test_leaves_a_connection_open*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED

    # 8: the open transaction is reported against the test that left it; the next starts clean
    assert records["test_2_starts_clean"]["outcome"] == "passed", failures
    culprit = records["test_1_leaves_a_transaction_open"]
    assert culprit["connections_leaked"] >= 1
    if cell.strategy != "clone":  # a clone is dropped with the transaction; a shared database must say so
        result.stdout.fnmatch_lines(["*test *test_1_leaves_a_transaction_open* left 1 transaction(s) open on *"])

    # 7: the worker's database address is there before conftests are imported (reset, rollback)
    assert records["test_the_database_address_was_there_at_import"]["outcome"] == "passed", failures

    # nothing else failed (test_failing.py's test fails on purpose, for the kept database), nothing was skipped
    assert [name for name, record in records.items() if record["outcome"] == "failed"] == [
        "test_fails_after_writing"
    ], failures
    assert outcomes.get("failed", 0) == 1, failures
    assert "skipped" not in outcomes


def check_readers(result: pytest.RunResult, records: dict[str, dict[str, Any]]) -> None:
    failures = "\n".join(result.outlines[-60:])
    assert sorted(records) == sorted(READER_TESTS), failures
    outcomes = {name: record["outcome"] for name, record in records.items()}
    assert outcomes == dict.fromkeys(READER_TESTS, "passed"), failures


def check_kept_database(cell: Cell, result: pytest.RunResult, printed: str) -> None:
    result.stdout.fnmatch_lines(
        ["*dbscope: databases of failed tests, kept*", f"test_failing.py::test_fails_after_writing: {printed}"]
    )
    if cell.strategy != "clone":
        assert printed == (
            f"not kept: the {cell.strategy} strategy restores its database for the next test; run this test with "
            "--dbscope-strategy clone --dbscope-keep-failed to keep its database"
        )
    elif cell.backend in ("postgresql-proc", "mariadb-proc"):
        assert printed.startswith("not kept: dbscope_") and "that is removed when the run ends" in printed
    elif cell.dialect == "sqlite":
        sqlite3_cli = shutil.which("sqlite3")
        assert sqlite3_cli is not None, "the sqlite3 command-line tool is needed (apt-get install sqlite3)"
        shown = subprocess.run(
            [sqlite3_cli, printed, "SELECT name FROM items ORDER BY id"], capture_output=True, text=True, check=True
        )
        assert shown.stdout == "seeded\nevidence\n"
    elif cell.dialect == "mysql":
        _open_in_pymysql(printed)
    else:
        _open_in_psql(printed)


def _open_in_pymysql(printed: str) -> None:
    import pymysql
    from mariadbsupport import connect_args

    conn = pymysql.connect(**connect_args(printed))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT name FROM items ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == ["seeded", "evidence"]
    finally:
        conn.close()


def _open_in_psql(printed: str) -> None:
    psql = shutil.which("psql")
    assert psql is not None, "the psql command-line tool is needed (apt-get install postgresql-client)"
    shown = subprocess.run(
        [psql, printed, "-X", "-A", "-t", "-c", "SELECT name FROM items ORDER BY id"], capture_output=True, text=True
    )
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "seeded\nevidence\n", "")


def drop_kept(cell: Cell, printed: str) -> None:
    """Drop the database a server kept for the failed test; a SQLite file stays with the run's files."""
    if cell.dialect == "mysql":
        from mariadbsupport import drop_if_kept as drop_if_kept_on_mariadb

        drop_if_kept_on_mariadb(printed.rsplit("/", 1)[1])
    elif cell.dialect == "postgresql":
        drop_if_kept(cell.url, printed.rsplit("/", 1)[1])
