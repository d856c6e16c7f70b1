"""End-to-end: the isolation report of real pytest runs (terminal, JSON, HTML, xdist, baselines)."""

from __future__ import annotations

import json
import pathlib
import re
import types
from typing import TYPE_CHECKING, Any

import pytest

from dbscope import IsolationManager
from dbscope.reporting import ReportPlugin

if TYPE_CHECKING:
    from conftest import MakeProject

XDIST = ("-n", "2", "-p", "no:benchmark")

LEAKY_SUITE = """
import os, pytest, sqlalchemy as sa

KEPT = []

@pytest.mark.parametrize("n", range(3))
def test_clean(db, n):
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")

def test_leaky(db):
    KEPT.append(sa.create_engine(os.environ["DATABASE_URL"]).connect())  # never closed

def test_without_a_database():
    pass
"""


def read_report(pytester: pytest.Pytester, name: str = "report.json") -> dict[str, Any]:
    report: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return report


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["nodeid"].rsplit("::", 1)[1]: t for t in report["tests"]}


# -- records --------------------------------------------------------------------------


def test_every_test_gets_a_record_even_without_a_scope(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(test_suite=LEAKY_SUITE)
    result = pytester.runpytest("--dbscope-report=report.json")
    result.assert_outcomes(passed=5)
    report = read_report(pytester)
    tests = by_name(report)
    assert list(tests) == ["test_clean[0]", "test_clean[1]", "test_clean[2]", "test_leaky", "test_without_a_database"]
    clean = tests["test_clean[0]"]
    assert (
        clean["outcome"] == "passed"
        and clean["scopes"] == 1
        and re.fullmatch(r"test_\d+_[0-9a-f]{8}", clean["scope_ids"][0])
    )
    assert clean["setup_ms"] > 0 and clean["teardown_ms"] > 0 and clean["duration_ms"] >= clean["call_ms"] > 0
    assert (clean["connections_opened"], clean["connections_closed"], clean["connections_leaked"]) == (1, 1, 0)
    plain = tests["test_without_a_database"]
    assert (plain["scopes"], plain["setup_ms"], plain["teardown_ms"], plain["connections_opened"]) == (0, 0.0, 0.0, 0)
    assert plain["warnings"] == [] and plain["scope_leaked"] is False
    leaky = tests["test_leaky"]
    assert leaky["connections_leaked"] == 1
    assert leaky["warnings"] == [
        {
            "kind": "connection_leak",
            "message": "connection leak in test_suite.py::test_leaky: 1 connection(s) left open",
        }
    ]
    summary = report["summary"]
    assert (summary["tests"], summary["connection_leaks"], summary["connection_leak_percent"]) == (5, 1, 20.0)
    assert summary["scoped_tests"] == 4
    assert report["metrics"]["scopes_created"] == 4 and report["metrics"]["connections_leaked"] == 1
    required = {
        "nodeid",
        "outcome",
        "duration_ms",
        "setup_ms",
        "teardown_ms",
        "connections_leaked",
        "scope_leaked",
        "memory_growth_bytes",
        "warnings",
    }
    assert all(required <= set(t) for t in report["tests"])


def test_outcomes_are_recorded_as_pytest_counts_them(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup breaks")

        @pytest.fixture
        def breaks_after():
            yield
            raise RuntimeError("teardown breaks")

        def test_passed(db): pass
        def test_failed(db): assert 0
        def test_error(broken): pass
        def test_teardown_error(breaks_after): pass
        @pytest.mark.skip
        def test_skipped(db): pass
        @pytest.mark.xfail
        def test_xfailed(db): assert 0
        @pytest.mark.xfail
        def test_xpassed(db): pass
        """
    )
    result = pytester.runpytest("--dbscope-report=report.json")
    result.assert_outcomes(
        passed=2, failed=1, errors=2, skipped=1, xfailed=1, xpassed=1
    )  # teardown error: passed + error
    outcomes = {name: t["outcome"] for name, t in by_name(read_report(pytester)).items()}
    assert outcomes == {
        "test_passed": "passed",
        "test_failed": "failed",
        "test_error": "error",
        "test_teardown_error": "error",
        "test_skipped": "skipped",
        "test_xfailed": "xfailed",
        "test_xpassed": "xpassed",
    }
    result.stdout.fnmatch_lines(
        ["tests: 7 (1 passed, 1 failed, 2 error, 1 skipped, 1 xfailed, 1 xpassed), failures: 3, *"]
    )


def test_the_terminal_report_has_the_figures_and_names_each_warning(project: MakeProject) -> None:
    pytester = project(ini="dbscope_slow_test_s = 0.3\ndbscope_memory_growth_mb = 4\n")
    pytester.makepyfile(
        """
        import time
        BALLAST = []

        def test_slow(db):
            time.sleep(0.35)  # slow on purpose: over dbscope_slow_test_s (the others stay well under it)

        def test_grows_memory():
            # written bytes, and above glibc's largest mmap threshold (32 MB): always fresh resident pages
            BALLAST.append(b"x" * (40 * 1024 * 1024))

        def test_quick(db):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*= dbscope isolation report =*",
            "tests: 3 (3 passed), failures: 0, average duration: *, max * (test_the_terminal_report*::test_slow)",
            "dbscope overhead per test: setup * ms, teardown * ms (2 of 3 tests used a scope)",
            "scope leaks: 0 (0.00%), connection leaks: 0 (0.00%) with 0 connection(s) left open",
            "slow tests (over 0.3 s): 1",
            "memory (RSS from /proc/self/statm): average growth * per test, max * MB (*::test_grows_memory),"
            " over 4 MB: 1",
            "scopes created: 2, destroyed: 2",
            "connections created: 2, closed: 2, leaked: 0",
            "average cleanup: * ms, emergency cleanups: 0, modules cleared: 0",
            "slow test test_the_terminal_report*.py::test_slow: * ms (over dbscope_slow_test_s = 0.3 s)",
            "memory growth in test_the_terminal_report*.py::test_grows_memory: * MB"
            " (over dbscope_memory_growth_mb = 4 MB)",
        ]
    )


def test_a_suite_that_uses_no_scope_gets_no_report(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*dbscope isolation report*")


# -- scope leaks ------------------------------------------------------------------------


def test_a_scope_left_active_is_reported_and_cleaned_up(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        def test_forgets_a_scope(dbscope):
            dbscope.create_scope("forgotten")

        def test_next_test_is_clean(dbscope, db):
            assert [s["test_name"] for s in dbscope.get_stats()["scopes"]] == [
                "test_a_scope_left_active_is_reported_and_cleaned_up.py::test_next_test_is_clean"
            ]
        """
    )
    result = pytester.runpytest("--dbscope-report=report.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "scope leaks: 1 (50.00%), connection leaks: 0 (0.00%) with 0 connection(s) left open",
            "average cleanup: * ms, emergency cleanups: 1, modules cleared: 0",
            (
                "scope leak in *::test_forgets_a_scope: scope test_*_* (test name 'forgotten') was still active after "
                "the test's teardown; dbscope cleaned it up"
            ),
        ]
    )
    tests = by_name(read_report(pytester))
    leaked = tests["test_forgets_a_scope"]
    assert leaked["scope_leaked"] is True and leaked["scopes"] == 1  # the cleaned-up scope ends inside its record
    assert tests["test_next_test_is_clean"]["scope_leaked"] is False


def test_scopes_of_module_and_session_fixtures_are_not_leaks(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def shared(dbscope):
            scope_id = dbscope.create_scope("module-wide")
            yield scope_id
            dbscope.destroy_scope(scope_id)

        @pytest.mark.parametrize("n", range(3))
        def test_uses_the_module_scope(shared, dbscope, n):
            assert shared in dbscope.active_scopes
        """
    )
    result = pytester.runpytest("--dbscope-report=report.json")
    result.assert_outcomes(passed=3)
    assert read_report(pytester)["summary"]["scope_leaks"] == 0
    result.stdout.fnmatch_lines(["scopes created: 1, destroyed: 1", "*emergency cleanups: 0*"])


# -- files ------------------------------------------------------------------------------


def test_json_and_html_are_written_where_asked(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(test_suite=LEAKY_SUITE)
    result = pytester.runpytest("--dbscope-report=out/r.json", "--dbscope-html=out/r.html")
    result.assert_outcomes(passed=5)
    out = pytester.path / "out"
    result.stdout.fnmatch_lines(
        [f"JSON report written to {out / 'r.json'}", f"HTML report written to {out / 'r.html'}"]
    )
    report = json.loads((out / "r.json").read_text())
    assert report["schema"] == "dbscope-report/1" and set(report) >= {"summary", "metrics", "tests"}
    page = (out / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "test_leaky" in page
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]


def test_the_report_settings_can_live_in_the_ini_file(project: MakeProject) -> None:
    pytester = project(ini="dbscope_report = reports/ini.json\n")
    pytester.makepyfile("def test_one(db): pass")
    pytester.runpytest().assert_outcomes(passed=1)
    assert read_report(pytester, "reports/ini.json")["summary"]["tests"] == 1


def test_a_report_that_cannot_be_written_fails_the_run_with_the_reason(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile("def test_one(db): pass")
    (pytester.path / "blocker").write_text("a file where a directory should be")
    result = pytester.runpytest("--dbscope-report=blocker/report.json")
    result.stdout.fnmatch_lines(["dbscope: --dbscope-report: cannot write the JSON report to */blocker/report.json: *"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# -- fail on leak ---------------------------------------------------------------------


def test_fail_on_leak_fails_a_green_run_and_lists_the_offenders(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        test_suite=LEAKY_SUITE
        + """
def test_forgets_a_scope(dbscope):
    dbscope.create_scope("forgotten")
"""
    )
    result = pytester.runpytest("--dbscope-fail-on-leak")
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "dbscope: failing the run (--dbscope-fail-on-leak): 2 test(s) leaked",
            "  test_suite.py::test_leaky: 1 connection(s) left open",
            "  test_suite.py::test_forgets_a_scope: a scope left active",
        ]
    )


def test_fail_on_leak_passes_a_clean_run(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile("def test_clean(db): pass")
    result = pytester.runpytest("--dbscope-fail-on-leak")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*failing the run*")


# -- xdist ----------------------------------------------------------------------------


def test_xdist_workers_send_records_and_the_controller_prints_one_report(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        test_suite="""
        import os, pytest, sqlalchemy as sa

        KEPT = []

        @pytest.mark.parametrize("n", range(10))
        def test_isolated(db, n):
            db.execute("INSERT INTO users (name, email) VALUES ('x', 'x@example.com')")

        def test_leaky(db):
            KEPT.append(sa.create_engine(os.environ["DATABASE_URL"]).connect())

        def test_without_a_database():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        *XDIST, "--dbscope-report=report.json", "--dbscope-html=report.html", "--dbscope-fail-on-leak"
    )
    result.assert_outcomes(passed=12)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.stdout.str().count("dbscope isolation report") == 1
    result.stdout.fnmatch_lines(
        [
            "tests: 12 (12 passed), failures: 0, *",
            "scope leaks: 0 (0.00%), connection leaks: 1 (8.33%) with 1 connection(s) left open",
            "workers: 2 (gw0, gw1)",
            "scopes created: 11, destroyed: 11",
            "connections created: 11, closed: 11, leaked: 1",
            "connection leak in test_suite.py::test_leaky: 1 connection(s) left open",
            "dbscope: failing the run (--dbscope-fail-on-leak): 1 test(s) leaked",
            "  test_suite.py::test_leaky: 1 connection(s) left open",
        ]
    )
    report = read_report(pytester)
    assert len(report["tests"]) == 12 and {t["worker"] for t in report["tests"]} == {"gw0", "gw1"}
    assert report["summary"]["workers"] == ["gw0", "gw1"] and report["metrics"]["scopes_created"] == 11
    assert (pytester.path / "report.html").read_text().count("<svg") >= 3


# -- baselines ------------------------------------------------------------------------


def test_a_saved_baseline_has_the_run_figures(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(test_suite=LEAKY_SUITE)
    result = pytester.runpytest("--dbscope-save-baseline=base.json", "--dbscope-report=report.json")
    result.stdout.fnmatch_lines([f"baseline written to {pytester.path / 'base.json'}"])
    baseline, report = read_report(pytester, "base.json"), read_report(pytester)
    assert baseline["schema"] == "dbscope-baseline/1" and baseline["tests"] == 5
    for key in ("average_duration_ms", "max_duration_ms", "average_memory_growth_bytes", "max_memory_growth_bytes"):
        assert baseline[key] == report["summary"][key]
    assert baseline["average_cleanup_ms"] == report["metrics"]["average_cleanup_ms"]


def write_baseline(pytester: pytest.Pytester, **figures: float) -> None:
    base = {
        "schema": "dbscope-baseline/1",
        "tests": 2,
        "workers": 1,
        "memory_source": "rss",
        "average_duration_ms": 1000.0,
        "max_duration_ms": 2000.0,
        "average_memory_growth_bytes": 50_000_000,
        "max_memory_growth_bytes": 50_000_000,
        "average_cleanup_ms": 1.0,
    }
    (pytester.path / "base.json").write_text(json.dumps({**base, **figures}))


SLOW_PAIR = """
import time

def test_quick(db):
    pass

def test_slowish(db):
    time.sleep(0.06)  # slow on purpose: over 1.5x the baseline's slowest test (and its 20 ms margin)
"""


def test_a_run_within_the_baseline_passes_with_a_table(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(SLOW_PAIR)
    write_baseline(pytester)
    result = pytester.runpytest("--dbscope-baseline=base.json", "--dbscope-report=report.json")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"compared with the baseline {pytester.path / 'base.json'}",
            "metric * baseline * current * threshold * change * status",
            "average test duration * 1.00 s * ok",
            "max test duration * 2.00 s * 3.00 s * ok",
            "no performance regression",
        ]
    )
    rows = read_report(pytester)["baseline"]["comparison"]
    assert [r["status"] for r in rows[:3]] == ["ok", "ok", "ok"]


def test_a_slower_max_duration_fails_the_run(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(SLOW_PAIR)
    write_baseline(pytester, average_duration_ms=1.0, max_duration_ms=2.0)
    result = pytester.runpytest("--dbscope-baseline=base.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "max test duration * 2.000 ms * 22.0 ms * FAILURE",
            "1 performance regression(s) over the failure threshold",
            "dbscope: failing the run: performance regression over the baseline's failure threshold",
        ]
    )


def test_a_missing_baseline_is_a_usage_error(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile("def test_one(db): pass")
    result = pytester.runpytest("--dbscope-baseline=nowhere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbscope: --dbscope-baseline: baseline '*nowhere.json' does not exist*"])


# -- debug logging --------------------------------------------------------------------


def test_debug_logging_names_scope_ids_and_tests(project: MakeProject, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester = project()
    pytester.makepyfile(test_logged="def test_one(db): pass")
    monkeypatch.setenv("DBSCOPE_DEBUG", "isolation")
    result = pytester.runpytest_subprocess("-s", "-p", "no:benchmark")
    result.assert_outcomes(passed=1)
    stderr = result.stderr.str()
    created = re.search(
        r"dbscope\.isolation DEBUG created scope (test_\d+_[0-9a-f]{8}) for test 'test_logged\.py::test_one'", stderr
    )
    assert created, stderr
    scope_id = created.group(1)
    assert f"destroying scope {scope_id} (test 'test_logged.py::test_one')" in stderr
    assert re.search(rf"destroyed scope {scope_id} \(test 'test_logged\.py::test_one'\) in [\d.]+ ms", stderr)
    assert "dbscope.database" not in stderr  # only the logger that was asked for


# -- cost -------------------------------------------------------------------------------


def test_the_report_hooks_driven_directly_record_every_test_once(tmp_path: pathlib.Path) -> None:
    """The plugin's own hooks for one test, as benchmarks/bench_report_hooks.py times them: one record each."""
    config = types.SimpleNamespace(invocation_params=types.SimpleNamespace(dir=pathlib.Path(tmp_path)))
    with IsolationManager("sqlite://") as manager:
        plugin = ReportPlugin(config, manager)  # type: ignore[arg-type]
        item = types.SimpleNamespace(nodeid="tests/test_x.py::test_y[3]")
        reports = [
            types.SimpleNamespace(nodeid=item.nodeid, when=when, duration=0.0001, failed=False, skipped=False)
            for when in ("setup", "call", "teardown")
        ]
        for _ in range(3):
            hook = plugin.pytest_runtest_protocol(item, None)  # type: ignore[arg-type]
            next(hook)
            for report in reports:
                plugin.pytest_runtest_logreport(report)  # type: ignore[arg-type]
            with pytest.raises(StopIteration):
                hook.send(None)
        plugin.memory.close()
    assert len(plugin.records) == 3
    assert {record.nodeid for record in plugin.records} == {item.nodeid}
