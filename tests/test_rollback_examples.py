"""The rollback examples users copy pass as shipped: examples/fastapi_app and examples/flask_app.

Each suite runs as its own project (a copy of the example directory, its pytest.ini as
written: ``dbscope_strategy = rollback`` with the app's engines named in the settings)
under ``-n 2`` and in one process, on in-memory SQLite and on PostgreSQL. Every test passes, and no commit
of the app escaped the test's transaction: dbscope never had to restore the database
(it logs "committed to" when it does, which ``-rA`` shows for passed tests too).

examples/festival runs under ``rollback`` by settings alone (its pytest.ini sets no strategy): its
engine is built lazily and rebuilt at every scope boundary, named by no setting, and joins all
the same. One of its tests commits through ``db.connect()``, a plain DB-API connection that
cannot join: that commit, and no other, is restored. Its migrations are SQLite's own
(``BEGIN IMMEDIATE``, a progress handler), so it runs on SQLite only.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

# whole example suites, not unit, plugin or conformance tests: `./run tests --all` runs them
# (CI does), and `./run examples` runs each of them on the in-memory default
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
APPS = ("fastapi_app", "flask_app")


def run_example(pytester: pytest.Pytester, app: str, *args: str) -> pytest.RunResult:
    """The example's suite, copied into the sandbox, run there with its own pytest.ini."""
    shutil.copytree(EXAMPLES / app, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-rA", *args)


def assert_all_passed_joined(result: pytest.RunResult, *, restored: Sequence[str] = ()) -> None:
    """Every test passed (or xfailed as marked), and only the tests in ``restored`` committed outside the join."""
    outcomes = result.parseoutcomes()
    summary = "\n".join(line for line in result.outlines if "FAILED" in line or "ERROR" in line)
    assert outcomes.get("passed", 0) >= 15, summary or result.stdout.str()[-3000:]
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, summary
    assert result.ret == 0
    escaped = [line for line in result.outlines + result.errlines if "committed to" in line]
    assert [line for line in escaped if not any(f"during test '{name}'" in line for name in restored)] == []
    assert len(escaped) == len(restored), escaped
    result.stdout.fnmatch_lines(["scope leaks: 0 *connection leaks: 0 *"])


#: under -n 2, then in one process (-n 0): a later -n wins over run_example's
SERIAL = ("-n", "0")


@pytest.mark.parametrize("app", APPS)
def test_the_example_passes_under_rollback_on_sqlite(pytester: pytest.Pytester, app: str) -> None:
    assert_all_passed_joined(run_example(pytester, app))
    assert_all_passed_joined(run_example(pytester, app, *SERIAL))


@pytest.mark.parametrize("app", APPS)
def test_the_example_passes_under_rollback_on_postgresql(pytester: pytest.Pytester, pg_url: str, app: str) -> None:
    assert_all_passed_joined(run_example(pytester, app, "-o", f"dbscope_url={pg_url}"))
    assert_all_passed_joined(run_example(pytester, app, "-o", f"dbscope_url={pg_url}", *SERIAL))


def test_the_festival_passes_under_rollback_by_settings_alone_on_sqlite(pytester: pytest.Pytester) -> None:
    plain_connection = "tests/test_concurrency.py::test_connections_of_other_threads_see_committed_work"
    for mode in ((), SERIAL):
        result = run_example(pytester, "festival", "-o", "dbscope_strategy=rollback", *mode)
        assert_all_passed_joined(result, restored=[plain_connection])
        assert result.parseoutcomes().get("xfailed") == 1
