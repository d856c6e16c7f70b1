"""``--dbscope-keep-failed`` in every cell: what is printed opens as printed, or says why there is nothing.

Under ``clone`` a failed test's database is kept and the printed value opens in ``sqlite3``
or ``psql`` as it stands, showing the test's rows; on a throwaway cluster (removed with the
run) and under ``reset``/``rollback`` (the worker's database is restored for the next test)
nothing can be kept, and the line says so instead of printing an address that will not open.
Serially and under ``-n 2``: the value travels to the controller in the test's report record.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from pgsupport import drop_if_kept

from .conftest import Cell, MakeCellProject, report_records

FAILING_TEST = """
def test_fails_after_writing(db):
    db.execute("INSERT INTO items (name) VALUES ('evidence')")
    assert False, "fails on purpose"
"""
MODES = {"serial": (), "xdist": ("-n", "2")}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_kept_database_opens_as_printed(cell: Cell, mode: str, make_project: MakeCellProject) -> None:
    pytester = make_project(cell, files={"test_failing.py": FAILING_TEST})
    result = pytester.runpytest_subprocess(
        *MODES[mode], "--dbscope-keep-failed", "--dbscope-report=report.json", "-p", "no:randomly"
    )
    result.assert_outcomes(failed=1)
    printed = report_records(pytester)["test_fails_after_writing"]["kept_database"]
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
        _open_in_pymysql_then_drop(printed)
    else:
        _open_in_psql_then_drop(printed, cell.url)


def _open_in_pymysql_then_drop(printed: str) -> None:
    import pymysql
    from mariadbsupport import connect_args, drop_if_kept

    name = printed.rsplit("/", 1)[1]
    try:
        conn = pymysql.connect(**connect_args(printed))
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT name FROM items ORDER BY id")
                assert [row[0] for row in cursor.fetchall()] == ["seeded", "evidence"]
        finally:
            conn.close()
    finally:
        drop_if_kept(name)


def _open_in_psql_then_drop(printed: str, server_url: str) -> None:

    name = printed.rsplit("/", 1)[1]
    try:
        psql = shutil.which("psql")
        assert psql is not None, "the psql command-line tool is needed (apt-get install postgresql-client)"
        shown = subprocess.run(
            [psql, printed, "-X", "-A", "-t", "-c", "SELECT name FROM items ORDER BY id"],
            capture_output=True,
            text=True,
        )
        assert (shown.returncode, shown.stdout, shown.stderr) == (0, "seeded\nevidence\n", "")
    finally:
        drop_if_kept(server_url, name)
