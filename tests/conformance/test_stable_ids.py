"""A suite parametrized by its database URL collects the same test ids on every worker and in every run.

Under a strategy that keeps one database per worker (``reset``, ``rollback``, ``worker``)
the URL is in the environment before conftests are imported, so a suite may put it in a
``parametrize`` and so in its test ids. xdist stops when its workers collect different
ids, and ``--lf`` or selecting a test by id needs the ids of one run in the next. On
``sqlite://`` each process reaches its own directory of databases through
``/proc/self/fd/<n>``, so the URL is one string everywhere; on the other backends each
worker's database has a name of its own and a stable ``ids=`` label does it (see
test_env_parts.py).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from dbscope.backends.sqlite import ALIAS_FD, SQLiteBackend
from dbscope.migrations import MigrationSet

from .conftest import Cell, MakeCellProject

TESTS = """
import os
import pytest
import app

URL = os.environ["DATABASE_URL"]  # read at import, so it is part of every test id below

@pytest.mark.parametrize("url", [URL]{ids})
@pytest.mark.parametrize("n", range(6))
def test_parametrized_by_the_url(url, n):
    assert url == os.environ["DATABASE_URL"]
    count, _ = app.count_and_insert_raw(f"test {n}")
    if "{strategy}" != "worker":
        assert count == 1  # the seeded row only: isolated from the tests before it
"""


def _ids(pytester: pytest.Pytester) -> list[str]:
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines + result.errlines)
    return [line for line in result.outlines if "::" in line]


@pytest.mark.parametrize(
    ("backend", "strategy"),
    [("sqlite-memory", "reset"), ("sqlite-memory", "rollback"), ("sqlite-memory", "worker"), ("postgresql", "reset")],
)
def test_the_url_in_test_ids_is_the_same_on_every_worker_and_in_every_run(
    backend: str, strategy: str, make_project: MakeCellProject, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite-memory":
        url, ids = "sqlite://", ""
    else:  # each worker's database has its own name: a stable label, as the README says
        url, ids = str(request.getfixturevalue("pg_url")), ', ids=["db"]'
    tests = TESTS.replace("{ids}", ids)
    pytester = make_project(Cell(backend, strategy, url), files={"test_by_url.py": tests})

    first, second = _ids(pytester), _ids(pytester)
    assert len(first) == 6, first
    assert first == second  # another run, another run id: the same ids (--lf and -k keep working)
    assert all("gw" not in test_id for test_id in first), first
    if backend == "sqlite-memory":
        assert all("sqlite:///" in test_id for test_id in first), first  # the URL itself

    # xdist compares the ids its workers collected and stops at the first difference
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-v")
    output = "\n".join(result.outlines + result.errlines)
    assert "Different tests were collected" not in output, output
    result.assert_outcomes(passed=6)
    assert {"[gw0]", "[gw1]"} <= {word for line in result.outlines for word in line.split()}, output


NO_SQL = MigrationSet()


def test_each_process_reaches_its_own_databases_through_the_same_url() -> None:
    first, second = SQLiteBackend(in_memory=True), SQLiteBackend(in_memory=True)
    descriptors = []
    try:
        one = first.create(first.template(NO_SQL, NO_SQL), label="reset")
        other = second.create(second.template(NO_SQL, NO_SQL), label="reset")
        # two backends in one process (a pytester run inside a suite) take two descriptors
        assert first.alias is not None and second.alias is not None
        assert first.alias.fd >= ALIAS_FD and second.alias.fd > first.alias.fd
        descriptors = [first.alias.fd, second.alias.fd]
        assert one.url() == f"sqlite:////proc/self/fd/{first.alias.fd}/dbscope_reset.sqlite3"
        assert os.path.realpath(one.url("dsn")) == str(one.path) != os.path.realpath(other.url("dsn"))

        conn = sqlite3.connect(one.url("dsn"))
        conn.execute("CREATE TABLE reached (x)")
        conn.commit()
        conn.close()
        assert one.foreign_connections() == {}  # it was seen, by its real path, and closed
        probe = sqlite3.connect(str(one.path))
        assert probe.execute("SELECT name FROM sqlite_master").fetchall() == [("reached",)]
        probe.close()

        # a program the test starts has no such descriptor: it fails, it never opens another database
        script = f"import sqlite3; sqlite3.connect({one.url('dsn')!r}).execute('SELECT 1 FROM reached')"
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert child.returncode != 0 and "unable to open database file" in child.stderr, child.stderr
    finally:
        first.close()
        second.close()
    assert descriptors and not any(os.path.exists(f"/proc/self/fd/{fd}") for fd in descriptors)  # gone with them
