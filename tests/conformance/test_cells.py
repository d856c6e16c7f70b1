"""Every isolation promise, in every (backend x strategy) cell, serially and under ``-n 2``.

One pytest run per cell and mode of the same project (conftest.py): commits through the
app's own engine (sync and async SQLAlchemy), a raw driver connection, ``db``,
``db_engine`` and ``db_async_engine`` leave nothing for the next test and ids start
again; schema changes are undone or the test that made them is named; a connection left
open is a leak of its test and ``--dbscope-fail-on-leak`` fails the run; a transaction
left open is the error of the test that left it. Under ``-n 2`` each file runs on one
worker (``--dist loadfile``), so the order within a file holds while the two workers run
different files side by side.
"""

from __future__ import annotations

import pytest

from .conftest import Cell, MakeCellProject, report_records

MODES = {"serial": (), "xdist": ("-n", "2", "--dist", "loadfile")}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_promise_holds(cell: Cell, mode: str, make_project: MakeCellProject) -> None:
    pytester = make_project(cell)
    result = pytester.runpytest_subprocess(
        *MODES[mode],
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--dbscope-report=report.json",
        "--dbscope-fail-on-leak",
        "-rA",
    )
    outcomes = result.parseoutcomes()
    records = report_records(pytester)
    failures = "\n".join(line for line in result.outlines if "FAILED" in line or "ERROR" in line)

    # 1, 2: every commit test saw only the seeded row and got id 2, whatever the channel
    commit_tests = [name for name in records if name.startswith(("test_a_commit", "test_db_"))]
    assert len(commit_tests) == 9 + 3 + 2 + 2, sorted(records)
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

    # nothing else failed, and nothing was skipped
    unexpected = outcomes.get("failed", 0)
    assert unexpected == 0, failures
    assert "skipped" not in outcomes
