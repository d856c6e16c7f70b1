"""Two writers on PostgreSQL and MariaDB never wait for each other because of dbscope.

Under ``reset`` and ``rollback`` dbscope notes which tables other sessions write (statement
triggers, see the backend) and counts DDL. That bookkeeping must not serialize an app's
sessions: a second session writing the same table while a first holds its transaction open
goes through at once, as it does without dbscope. (SQLite allows one writer at a time
anyway: the second waits there, with or without dbscope.) MariaDB commits the transaction
before a DDL statement, so there the first session runs no DDL: its insert stays uncommitted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Cell, MakeCellProject, url_of

TESTS = """
import app

# waiting would fail here instead of hanging
NO_WAIT = {
    "postgresql": "SET statement_timeout = '3s'",
    "mysql": "SET SESSION max_statement_time = 3, innodb_lock_wait_timeout = 3",
}

def test_a_second_writer_does_not_wait_for_the_first():
    first = app.raw_connect()
    first.execute("INSERT INTO items (name) VALUES ('first, not committed yet')")
    if app.dialect() == "postgresql":  # MariaDB would commit the insert before the DDL
        first.execute("CREATE TABLE made_by_first (x integer)")  # DDL too
    second = app.raw_connect()
    second.execute(NO_WAIT[app.dialect()])
    second.execute("INSERT INTO items (name) VALUES ('second')")
    second.execute("CREATE TABLE made_by_second (x integer)")
    second.commit()
    first.rollback()
    first.close()
    second.close()
"""


@pytest.mark.parametrize("strategy", ["reset", "rollback"])
@pytest.mark.parametrize("backend", ["postgresql", "postgresql-proc", "mariadb", "mariadb-proc"])
def test_dbscope_never_makes_one_writer_wait_for_another(
    backend: str, strategy: str, make_project: MakeCellProject, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = url_of(backend, request, tmp_path)
    pytester = make_project(Cell(backend, strategy, url), files={"test_writers.py": TESTS})
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    if strategy == "reset":  # the restore drops the table the second session created
        result.assert_outcomes(passed=1)
    else:  # a committed CREATE TABLE under rollback: the teardown names the schema change, as promised
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*changed the schema of*"])
