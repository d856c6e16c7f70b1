"""The ``worker`` strategy in every backend: what it promises, and that it promises nothing more.

One database per xdist worker (per process when serial), in the environment before any
conftest is imported, never restored between tests: parallel safety for suites that clean
up after themselves, with the same leak checks and report as the other strategies. A
test sees what the tests before it on its worker left, and never another worker's rows.
"""

from __future__ import annotations

import pytest

from .conftest import Cell, MakeCellProject, report_records

CONFTEST = """
import os
IMPORTED_URL = os.environ.get("DATABASE_URL")
"""

TESTS = """
import os, app, conftest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
KEPT = []

def mine():
    conn = app.raw_connect()
    try:
        return sorted(str(r[0]) for r in conn.execute("SELECT name FROM items WHERE name <> 'seeded'"))
    finally:
        conn.close()

def test_1_writes_and_commits():
    assert conftest.IMPORTED_URL == os.environ["DATABASE_URL"]  # there before conftests were imported
    before = mine()
    assert all(name.startswith(WORKER + ":") for name in before)  # never another worker's rows
    app.run_raw(f"INSERT INTO items (name) VALUES ('{WORKER}:{__name__}')")

def test_2_sees_what_test_1_left():
    assert f"{WORKER}:{__name__}" in mine()  # not restored: the suite cleans up after itself
    assert all(name.startswith(WORKER + ":") for name in mine())

def test_3_leaves_a_connection_open():
    KEPT.append(app.raw_connect())
"""


@pytest.mark.parametrize("mode", ["serial", "xdist"])
def test_one_database_per_worker_never_restored_and_leaks_reported(
    backend_url: str, mode: str, make_project: MakeCellProject, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["backend_url"]
    files = {"conftest.py": CONFTEST, **{f"test_file_{n}.py": TESTS for n in range(4)}}
    pytester = make_project(Cell(backend, "worker", backend_url), files=files)
    args = ("-n", "2", "--dist", "loadfile") if mode == "xdist" else ()
    result = pytester.runpytest_subprocess(*args, "-p", "no:randomly", "--dbscope-report=report.json")
    result.assert_outcomes(passed=12)
    records = report_records(pytester)
    assert records["test_3_leaves_a_connection_open"]["connections_leaked"] >= 1
    assert records["test_2_sees_what_test_1_left"]["connections_leaked"] == 0
    result.stdout.fnmatch_lines(["*dbscope isolation report*", "*connection leak*test_3_leaves_a_connection_open*"])


def test_a_broken_migration_stops_the_run_before_any_module_is_imported(
    backend_url: str, make_project: MakeCellProject, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["backend_url"]
    files = {"conftest.py": "print('conftest imported')\n", "test_x.py": "def test_x():\n    pass\n"}
    pytester = make_project(Cell(backend, "worker", backend_url), files=files, migrations="CREATE TABLE (oops;\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: dbscope: MigrationError: *0001_items.sql*"])
    assert "conftest imported" not in result.stdout.str() + result.stderr.str()
