"""The reset and rollback strategies, and keeping a failed test's database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import MakeProject

APP_CONFTEST = """
import os, sqlite3

# What real suites do: connect at import time from an environment variable.
URL = os.environ.get("TEST_DATABASE_URI", "file:/shared-by-everyone?vfs=memdb")
APP_CONN = sqlite3.connect(URL, uri=True, check_same_thread=False, isolation_level=None)
"""

APP_TESTS = """
import os, pytest, conftest

@pytest.mark.parametrize("n", range(6))
def test_app_connection_sees_a_clean_database(n):
    assert os.environ["TEST_DATABASE_URI"] == conftest.URL  # never changes
    conn = conftest.APP_CONN  # opened once, at import, and kept open
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)
    conn.execute("INSERT INTO users (name, email) VALUES ('x', 'same@example.com')")
"""


@pytest.mark.parametrize("backend", ["sqlite://", "sqlite:///{tmp}/dbs"])
def test_reset_isolates_a_suite_that_connects_at_import_time(
    project: MakeProject, tmp_path: Path, backend: str
) -> None:
    url = backend.format(tmp=tmp_path)
    pytester = project(
        ini=f"dbscope_url = {url}\ndbscope_strategy = reset\n"
        "dbscope_env_var = TEST_DATABASE_URI:dsn\ndbscope_autouse = true\n"
    )
    pytester.makeconftest(APP_CONFTEST)
    pytester.makepyfile(test_app=APP_TESTS)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=6)


def test_reset_works_under_xdist_with_one_database_per_worker(project: MakeProject) -> None:
    pytester = project(
        ini="dbscope_strategy = reset\ndbscope_env_var = TEST_DATABASE_URI:dsn\ndbscope_autouse = true\n"
    )
    # every worker imports the conftest (xdist may give one worker all the tests of a file):
    # the URL is one string on every worker; behind it, each worker's own file
    pytester.makeconftest(
        APP_CONFTEST
        + """
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "none")
with open(f"seen-{WORKER}", "w") as out:
    out.write(os.path.realpath(URL))
"""
    )
    pytester.makepyfile(
        test_app=APP_TESTS
        + """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_each_worker_has_its_own_database(n):
    with open(f"seen-{conftest.WORKER}") as seen:
        assert seen.read() == os.path.realpath(conftest.URL)
"""
    )
    pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark").assert_outcomes(passed=10)
    seen = {path.name: path.read_text() for path in pytester.path.glob("seen-gw*")}
    assert len(seen) == 2 and len(set(seen.values())) == 2, seen


def test_rollback_undoes_each_test_and_nests_transactions_as_savepoints(project: MakeProject) -> None:
    pytester = project(ini="dbscope_strategy = rollback\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_writes_are_rolled_back(db, dbscope_scope, n):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'same@example.com')")
            with pytest.raises(RuntimeError):
                with db.transaction() as tx:
                    tx.execute("INSERT INTO users (name, email) VALUES ('b', 'b@example.com')")
                    raise RuntimeError("undo the savepoint only")
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1

        def test_same_database_for_every_test(dbscope_scope, dbscope):
            assert dbscope_scope.database.name.endswith("_rollback")
        """
    )
    pytester.runpytest().assert_outcomes(passed=5)


def test_rollback_survives_a_test_that_commits_on_its_own(project: MakeProject) -> None:
    pytester = project(ini="dbscope_strategy = rollback\n")
    pytester.makepyfile(
        """
        def test_commits_behind_dbscopes_back(db):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            db.execute("COMMIT")

        def test_still_clean(db):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_keep_failed_saves_the_failed_tests_database_and_prints_its_url(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        def test_fails_after_writing(db):
            db.execute("INSERT INTO users (name, email) VALUES ('evidence', 'e@example.com')")
            assert False, "look at the database"

        def test_passes(db):
            pass
        """
    )
    result = pytester.runpytest("--dbscope-keep-failed")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*databases of failed tests, kept*", "*::test_fails_after_writing: /*/.dbscope/failed/*.sqlite3"]
    )
    kept = list((pytester.path / ".dbscope" / "failed").glob("*.sqlite3"))
    assert len(kept) == 1
    conn = sqlite3.connect(kept[0])
    assert conn.execute("SELECT name FROM users").fetchall() == [("evidence",)]
    conn.close()


def test_rollback_restores_when_another_connection_committed(project: MakeProject) -> None:
    pytester = project(ini="dbscope_strategy = rollback\n")
    pytester.makepyfile(
        """
        import os, sqlite3

        def test_app_commits_on_its_own_connection(db, dbscope_scope):
            app = sqlite3.connect(dbscope_scope.url("dsn"), uri=True)
            db.execute("SELECT 1")  # the test's transaction is open, but has not written
            app.execute("INSERT INTO users (name, email) VALUES ('app', 'app@example.com')")
            app.commit()
            app.close()

        def test_does_not_see_the_apps_row(db):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_transaction_left_open_is_the_error_of_the_test_that_left_it(tmp_path: Path) -> None:
    from dbscope import IsolationManager

    (tmp_path / "0001.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
    with IsolationManager("sqlite://", migrations=str(tmp_path), strategy="reset", env_vars=[]) as manager:
        with manager.scope("leaves a transaction open") as scope:
            holder = sqlite3.connect(scope.url("dsn"), uri=True)
            holder.execute("INSERT INTO users (name) VALUES ('stale')")  # implicit BEGIN, never committed
        assert scope.isolation_errors == [
            f"test 'leaves a transaction open' left 1 transaction(s) open on {scope.database.name} through a "
            "connection dbscope did not open (rolled back); commit or roll back before the test ends "
            "(a session or connection the app keeps open across requests?)"
        ]
        assert scope.leaked_connections == 1
        with manager.scope("next test") as scope:
            assert scope.client().execute("SELECT COUNT(*) FROM users").scalar() == 0
        holder.close()


@pytest.mark.slow  # a fault: waits out the restore timeout (5 s) three times
def test_a_reset_blocked_by_a_transaction_dbscope_cannot_end_never_shares_data(tmp_path: Path) -> None:
    import threading

    from dbscope import DbscopeError, IsolationManager

    (tmp_path / "0001.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
    opened, release = threading.Event(), threading.Event()
    with IsolationManager(
        "sqlite://", migrations=str(tmp_path), strategy="reset", env_vars=[], close_timeout=0.3
    ) as manager:
        with manager.scope("leaves a transaction open") as scope:

            def app_thread() -> None:  # a connection of another thread: dbscope cannot roll it back
                conn = sqlite3.connect(scope.url("dsn"), uri=True)
                conn.execute("INSERT INTO users (name) VALUES ('stale')")
                opened.set()
                release.wait()
                conn.close()  # closing ends the transaction

            worker = threading.Thread(target=app_thread)
            worker.start()
            opened.wait()
        assert "could not roll it back" in scope.isolation_errors[0]
        assert manager.metrics["cleanup_failures"] == 1
        with pytest.raises(DbscopeError, match="could not be restored after test 'leaves a transaction open'"):
            manager.create_scope("next test")
        release.set()
        worker.join()
        with manager.scope("after the app let go") as scope:
            assert scope.client().execute("SELECT COUNT(*) FROM users").scalar() == 0
