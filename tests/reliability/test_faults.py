"""Faults on SQLite and in the plugin: real pytest runs that hang, fail, time out, get killed.

Each test runs a real suite with ``pytester`` in a subprocess, injects one fault (a close
that hangs, a driver error, pytest-timeout, Ctrl-C, a SIGKILLed xdist worker, a statement
still running, a full disk), then checks that nothing was left behind (no active scope or
tracked connection in the manager, no ``dbscope_*`` file but the kept template) and that
the next run of the same suite in the same place is clean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import MakeProject
    from reliability.figures import Figures

# load, soak, fault or fuzz: `./run tests --all` and CI run this module, `./run tests` does not
pytestmark = pytest.mark.slow

# a real SQLite statement that would run for days: counts to 10^12
LONG_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000) SELECT count(*) FROM c"
)

# Written into each run: at the end of the session, what the manager still holds.
STATE_CONFTEST = """
import json, os, threading
from dbscope.plugin import MANAGER_KEY

def pytest_sessionfinish(session):
    manager = session.config.stash[MANAGER_KEY]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    state = {
        "active_scopes": len(manager.active_scopes),
        "tracked": len(manager.global_connection_registry),
        "metrics": manager.metrics,
        "threads": sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()),
    }
    with open(f"state_{worker}.json", "w") as out:
        json.dump(state, out)
"""

RUN_TIMEOUT = 120  # a run that takes longer than this is hung: pytester raises TimeoutExpired


def file_project(project: MakeProject, *, close_timeout: float = 0.5, extra: str = "") -> tuple[pytest.Pytester, Path]:
    """A pytester project on the file backend (``sqlite:///<project>/dbs``) with the state conftest."""
    pytester: pytest.Pytester = project()
    directory = pytester.path / "dbs"
    pytester.makefile(
        ".ini",
        pytest=(
            "[pytest]\ndbscope_migrations = migrations\n"
            f"dbscope_url = sqlite:///{directory}\ndbscope_close_timeout = {close_timeout}\n{extra}"
        ),
    )
    pytester.makeconftest(STATE_CONFTEST)
    return pytester, directory


def memory_project(project: MakeProject, *, close_timeout: float = 0.5) -> pytest.Pytester:
    pytester: pytest.Pytester = project(ini=f"dbscope_close_timeout = {close_timeout}\n")
    pytester.makeconftest(STATE_CONFTEST)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:benchmark", *args, timeout=RUN_TIMEOUT)


def leftovers(directory: Path) -> list[str]:
    """Every dbscope file in the directory except the templates dbscope keeps on purpose."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("dbscope_tpl_"))


def state(pytester: pytest.Pytester, worker: str = "main") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / f"state_{worker}.json").read_text())
    return data


def report(pytester: pytest.Pytester, name: str = "report.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return data


def assert_nothing_held(pytester: pytest.Pytester, worker: str = "main") -> dict[str, Any]:
    """The manager ended the session with no scope and no tracked connection, all destroyed."""
    held = state(pytester, worker)
    assert held["active_scopes"] == 0
    assert held["tracked"] == 0
    assert held["metrics"]["scopes_created"] == held["metrics"]["scopes_destroyed"]
    return held


def warnings_of(test: dict[str, Any], kind: str) -> list[str]:
    return [w["message"] for w in test["warnings"] if w["kind"] == kind]


# -- 1. a close that hangs --------------------------------------------------------------

HANGING_SUITE = """
import os, sqlite3, threading
import pytest

NEVER = threading.Event()  # never set: the close below blocks for good
SEEN = {}

class HangingClose:
    closed = False
    def close(self):
        NEVER.wait()

def test_leaves_a_resource_whose_close_hangs(dbscope_scope, db):
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
    dbscope_scope.track(HangingClose())
    SEEN["raw"] = dbscope_scope.connect()      # tracked after the hanging one
    SEEN["client"] = dbscope_scope.client()
    SEEN["path"] = os.path.realpath(dbscope_scope.url("dsn"))  # the file behind sqlite://'s /proc/self/fd alias

def test_next_test_gets_a_fresh_database_and_the_rest_was_closed(db):
    assert SEEN["client"].closed
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        SEEN["raw"].execute("SELECT 1")
    assert not os.path.exists(SEEN["path"])   # dropped despite the hang
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
"""


@pytest.mark.timeout(120)
def test_a_hanging_close_is_bounded_and_the_rest_of_the_scope_still_closes(
    project: MakeProject, figures: Figures
) -> None:
    pytester, directory = file_project(project, close_timeout=0.5)
    pytester.makepyfile(test_hangs=HANGING_SUITE)

    for _attempt in (1, 2):  # the same suite twice in the same directory: the second run is as clean
        result = run(pytester, "--dbscope-report=report.json")
        result.assert_outcomes(passed=2)
        hung = report(pytester)["tests"][0]
        # bounded by dbscope_close_timeout: half a second, far from "hung" (generous for a busy machine)
        assert 500 <= hung["teardown_ms"] < 10_000
        [warning] = warnings_of(hung, "cleanup_failure")
        assert "HangingClose" in warning and "longer than 0.5 s" in warning
        result.stdout.fnmatch_lines(["*cleanup failure in test_hangs.py::test_leaves_a_resource_whose_close_hangs*"])
        held = assert_nothing_held(pytester)
        assert held["metrics"]["cleanup_failures"] == 1
        # the abandoned close is one daemon thread still blocked in the user's close()
        assert held["threads"].count("dbscope-close") == 1
        assert leftovers(directory) == []
    figures.record(hung_close_teardown_ms=round(hung["teardown_ms"], 1), close_timeout_s=0.5)


# -- 2. a driver error during cleanup ---------------------------------------------------

FAILING_CLOSE_SUITE = """
import os, sqlite3
import pytest

SEEN = {}

class FailingClose:
    '''A real connection whose driver fails while closing it.'''
    closed = False
    def __init__(self, conn):
        self.conn = conn
    def close(self):
        self.conn.close()
        raise sqlite3.OperationalError("disk I/O error (injected in close)")

def test_leaves_a_connection_whose_close_fails(dbscope_scope, db):
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
    raw = sqlite3.connect(dbscope_scope.url("dsn"), check_same_thread=False)  # dbscope closes it in a helper thread
    SEEN["failing"] = dbscope_scope.track(FailingClose(raw))
    SEEN["raw"] = dbscope_scope.connect()      # tracked after the failing one
    SEEN["path"] = os.path.realpath(dbscope_scope.url("dsn"))  # the file behind sqlite://'s /proc/self/fd alias

def test_next_test_gets_a_fresh_database_and_the_rest_was_closed(db):
    for conn in (SEEN["failing"].conn, SEEN["raw"]):
        with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
            conn.execute("SELECT 1")
    assert not os.path.exists(SEEN["path"])
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
"""


@pytest.mark.timeout(120)
def test_a_driver_error_in_close_is_reported_and_the_rest_still_closes(project: MakeProject, figures: Figures) -> None:
    pytester, directory = file_project(project)
    pytester.makepyfile(test_driver_error=FAILING_CLOSE_SUITE)

    for _attempt in (1, 2):
        result = run(pytester, "--dbscope-report=report.json")
        result.assert_outcomes(passed=2)
        failed = report(pytester)["tests"][0]
        [warning] = warnings_of(failed, "cleanup_failure")
        assert "FailingClose" in warning and "OperationalError: disk I/O error (injected in close)" in warning
        result.stdout.fnmatch_lines(["*cleanup failure in test_driver_error.py::*disk I/O error (injected in close)*"])
        assert failed["connections_leaked"] == 0
        held = assert_nothing_held(pytester)
        assert held["metrics"]["cleanup_failures"] == 1
        assert leftovers(directory) == []
    figures.record(driver_error_teardown_ms=round(failed["teardown_ms"], 1))


# -- 3. pytest-timeout kills a test in the middle of a query ----------------------------

TIMEOUT_SUITE = f"""
import os

def test_stuck_in_a_long_query(db):
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
    if os.environ.get("FAULT") == "1":
        db.execute({LONG_QUERY!r})

def test_next_test_gets_a_fresh_database(db):
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
"""


@pytest.mark.timeout(150)
def test_a_signal_timeout_mid_query_fails_the_test_and_teardown_still_runs(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    pytester = memory_project(project)
    pytester.makepyfile(test_timeout=TIMEOUT_SUITE)
    monkeypatch.setenv("FAULT", "1")

    started = time.monotonic()
    result = run(pytester, "--timeout=2", "--timeout-method=signal", "--dbscope-report=report.json")
    took = time.monotonic() - started
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>2.0s) from pytest-timeout*"])
    data = report(pytester)
    stuck, after = data["tests"]
    assert (stuck["outcome"], stuck["scopes"], stuck["scope_leaked"]) == ("failed", 1, False)
    assert after["outcome"] == "passed"
    assert data["metrics"]["scopes_created"] == data["metrics"]["scopes_destroyed"] == 2
    assert data["metrics"]["connections_created"] == data["metrics"]["connections_closed"]
    assert_nothing_held(pytester)

    monkeypatch.setenv("FAULT", "0")  # the next run of the same suite
    run(pytester, "--timeout=2", "--timeout-method=signal").assert_outcomes(passed=2)
    assert_nothing_held(pytester)
    figures.record(signal_timeout_run_s=round(took, 2), signal_timeout_stuck_call_ms=round(stuck["call_ms"], 1))


@pytest.mark.timeout(150)
@pytest.mark.parametrize("backend", ["memory", "file"])
def test_a_thread_timeout_exits_the_process_and_the_next_run_is_clean(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, backend: str, figures: Figures
) -> None:
    if backend == "file":
        pytester, directory = file_project(project)
    else:
        pytester, directory = memory_project(project), None
    pytester.makepyfile(test_timeout=TIMEOUT_SUITE)
    monkeypatch.setenv("FAULT", "1")

    result = run(pytester, "--timeout=2", "--timeout-method=thread")
    # pytest-timeout dumped the stacks (the query is in them) and os._exit(1)ed: no teardown ran
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*Timeout*", "*test_stuck_in_a_long_query*"])
    assert not (pytester.path / "state_main.json").exists()  # the session never finished
    left = leftovers(directory) if directory is not None else []
    if directory is not None:
        # what a dead run leaves: its clone(s) and its owner file, nothing else
        assert any(name.endswith(".owner") for name in left)
        assert any(name.endswith(".sqlite3") for name in left)

    monkeypatch.setenv("FAULT", "0")  # the next run of the same suite, in the same place
    run(pytester).assert_outcomes(passed=2)
    assert_nothing_held(pytester)
    if directory is not None:
        assert leftovers(directory) == []  # swept: the dead run's process is gone
    figures.record(**{f"thread_timeout_{backend}_files_left_by_dead_run": len(left)})


# -- 4. Ctrl-C --------------------------------------------------------------------------

INTERRUPT_SUITE = f"""
import os, pathlib

def test_first(db):
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")

def test_interrupted(db):
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
    fault = os.environ.get("FAULT")
    if fault == "raise":
        raise KeyboardInterrupt
    if fault == "sigint":
        pathlib.Path("in_query").write_text(str(os.getpid()))  # the outer test waits for this
        db.execute({LONG_QUERY!r})

def test_last(db):
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
"""


@pytest.mark.timeout(150)
def test_a_keyboard_interrupt_raised_by_a_test_stops_pytest_and_cleans_up(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, directory = file_project(project)
    pytester.makepyfile(test_interrupt=INTERRUPT_SUITE)
    monkeypatch.setenv("FAULT", "raise")

    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert "test_last" not in result.stdout.str()  # pytest stopped
    assert_nothing_held(pytester)
    assert leftovers(directory) == []

    monkeypatch.setenv("FAULT", "0")
    run(pytester).assert_outcomes(passed=3)
    assert leftovers(directory) == []


@pytest.mark.timeout(150)
def test_sigint_during_a_long_query_stops_pytest_and_cleans_up(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    pytester, directory = file_project(project)
    pytester.makepyfile(test_interrupt=INTERRUPT_SUITE)
    ready = pytester.path / "in_query"
    env = {**os.environ, "FAULT": "sigint"}
    command = [sys.executable, "-m", "pytest", "-p", "no:benchmark", "--dbscope-report=report.json"]
    with subprocess.Popen(
        command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        deadline = time.monotonic() + 60
        while not ready.exists():  # the test wrote the file just before starting the query
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the inner test never reached its query"
            time.sleep(0.01)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"SIGINT did not stop a run stuck in a SQLite query: {proc.communicate()[0]}")
        stopped_after = time.monotonic() - sent

    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert "test_last" not in output
    assert_nothing_held(pytester)
    interrupted = report(pytester)["tests"][-1]
    assert interrupted["nodeid"].endswith("test_interrupted") and interrupted["scopes"] == 1
    assert leftovers(directory) == []

    monkeypatch.setenv("FAULT", "0")
    run(pytester).assert_outcomes(passed=3)
    assert leftovers(directory) == []
    figures.record(sigint_to_exit_s=round(stopped_after, 2))


# -- 5. an xdist worker SIGKILLed -------------------------------------------------------

XDIST_SUITE = """
import os, signal
import pytest

@pytest.mark.parametrize("n", range(8))
def test_isolated(db, n):
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
    db.execute("INSERT INTO users (name, email) VALUES ('x', 'x@example.com')")
    assert os.environ["PYTEST_XDIST_WORKER"] in os.environ["DATABASE_URL"]

def test_killed(db):
    db.execute("INSERT INTO users (name, email) VALUES ('k', 'k@example.com')")
    if os.environ.get("FAULT") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.timeout(180)
def test_a_sigkilled_xdist_worker_is_reported_and_its_files_are_removed(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    pytester, directory = file_project(project)
    pytester.makepyfile(test_xdist_kill=XDIST_SUITE)
    monkeypatch.setenv("FAULT", "1")

    result = run(pytester, "-n", "2", "--dbscope-report=report.json")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running*test_killed*"])
    # the killed worker never sent its records: the report says so instead of under-counting quietly
    [crashed] = report(pytester)["summary"]["missing_workers"]
    result.stdout.fnmatch_lines([f"worker {crashed} went down before sending its records: its tests are missing here"])
    left_after_crash = leftovers(directory)

    monkeypatch.setenv("FAULT", "0")
    run(pytester, "-n", "2").assert_outcomes(passed=9)
    for worker in ("gw0", "gw1"):
        assert_nothing_held(pytester, worker)
    assert leftovers(directory) == []
    figures.record(files_left_by_killed_worker=len(left_after_crash))


# -- 6. a statement still running when the scope ends -----------------------------------

RUNNING_SUITE = f"""
import json, os, threading
import pytest

SEEN = {{}}

@pytest.fixture(params=["client", "raw_connection"])
def busy(request, dbscope_scope, db):
    '''Where the long statement runs, and the connection it runs on (to see it start).'''
    if request.param == "client":
        return db, dbscope_scope.database.primary_connection()  # the db client runs on this one
    conn = dbscope_scope.connect()
    return conn, conn

def test_returns_with_a_query_running(busy, dbscope_scope):
    target, conn = busy
    started = threading.Event()
    conn.create_function("started", 0, lambda: started.set() or 1)
    query = {LONG_QUERY!r}.replace("SELECT 1 UNION", "SELECT started() UNION")

    seen = SEEN[type(target).__name__] = {{"dsn": os.path.realpath(dbscope_scope.url("dsn"))}}
    assert os.path.isfile(seen["dsn"])  # the probe after the drop can tell a database that is there

    def work():
        try:
            target.execute(query)
        except Exception as exc:
            seen["error"] = f"{{type(exc).__name__}}: {{exc}}"

    seen["thread"] = threading.Thread(target=work, name="long-query")
    seen["thread"].start()
    assert started.wait(30)  # the statement is running in SQLite now

def test_next_the_queries_were_stopped_and_the_databases_dropped():
    assert set(SEEN) == {{"Client", "Connection"}}
    for seen in SEEN.values():
        seen["thread"].join(30)
        assert not seen["thread"].is_alive()
        # a dropped database is a deleted file: neither it nor its WAL companions are left
        assert os.path.isabs(seen["dsn"])
        assert [s for s in ("", "-journal", "-wal", "-shm") if os.path.exists(seen["dsn"] + s)] == []
    assert SEEN["Client"]["error"] == "OperationalError: interrupted"
    with open("errors.json", "w") as out:
        json.dump({{kind: seen["error"] for kind, seen in SEEN.items()}}, out)
"""


@pytest.mark.timeout(120)
def test_a_statement_still_running_at_scope_end_is_interrupted_within_the_close_timeout(
    project: MakeProject, figures: Figures
) -> None:
    pytester = memory_project(project, close_timeout=0.5)
    pytester.makepyfile(test_running=RUNNING_SUITE)

    result = run(pytester, "-p", "no:randomly", "--dbscope-report=report.json")
    result.assert_outcomes(passed=3)
    tests = {t["nodeid"].split("::")[-1]: t for t in report(pytester)["tests"]}
    client, raw = (tests[f"test_returns_with_a_query_running[{p}]"] for p in ("client", "raw_connection"))
    # the client waits out the close timeout (0.5 s) for its lock, then interrupts: bounded, not hung
    assert 500 <= client["teardown_ms"] < 10_000
    [warning] = warnings_of(client, "cleanup_failure")
    assert "a statement was still running after 0.5 s; interrupted it" in warning
    assert client["connections_leaked"] == 0 and not client["scope_leaked"]
    # a raw connection is interrupted at once, then closed under the statement that was running
    assert raw["teardown_ms"] < 10_000 and not raw["scope_leaked"]
    held = assert_nothing_held(pytester)
    assert "long-query" not in held["threads"]
    errors = json.loads((pytester.path / "errors.json").read_text())
    figures.record(
        running_query_client_teardown_ms=round(client["teardown_ms"], 1),
        running_query_raw_connection_teardown_ms=round(raw["teardown_ms"], 1),
        running_query_raw_connection_thread_saw=errors["Connection"],
        running_query_raw_connection_leaks_counted=raw["connections_leaked"],
    )


# -- 7. a full disk (file backend) ------------------------------------------------------

# Runs pytest with a file size limit: the kernel refuses writes past it (EFBIG), as a full
# disk would (SQLite reports SQLITE_FULL, "database or disk is full"). SIGXFSZ is ignored so
# the write fails instead of killing the process. Works without root.
LIMITED_RUNNER = """
import resource, signal, sys
import pytest

limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
raise SystemExit(pytest.main(["-p", "no:benchmark", "-p", "no:cacheprovider", *sys.argv[2:]]))
"""

DISK_SUITE = """
import os, pytest

def test_fills_the_disk(db):
    if os.environ.get("FAULT") == "1":
        db.execute(
            "INSERT INTO users (name, email) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 100000) SELECT printf('user %d', x), printf('u%d@example.com', x) FROM c"
        )

def test_next_test_gets_a_fresh_database(db):
    assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
"""


def limited_run(pytester: pytest.Pytester, limit: int, *args: str) -> pytest.RunResult:
    pytester.makepyfile(limited_runner=LIMITED_RUNNER)
    return pytester.run(sys.executable, "limited_runner.py", str(limit), *args, timeout=RUN_TIMEOUT)


def template_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.glob("dbscope_tpl_*")}


@pytest.mark.timeout(150)
def test_a_full_disk_when_dbscope_clones_is_a_clear_error_and_leaves_no_partial_file(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, directory = file_project(project)
    pytester.makepyfile(test_disk=DISK_SUITE)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    run(pytester).assert_outcomes(passed=2)  # builds the template, which later runs reuse
    template = template_bytes(directory)
    assert len(template) == 1 and len(next(iter(template.values()))) > 4096

    result = limited_run(pytester, 4096, "test_disk.py")  # smaller than one copy of the template
    result.assert_outcomes(errors=1)  # and the session stops: every test would need a clone
    result.stdout.fnmatch_lines(
        [
            f"*BackendUnavailableError: cannot create the database file dbscope_*.sqlite3 in {directory}: "
            "File too large; free some disk space or point dbscope_url at another directory*"
        ]
    )
    assert leftovers(directory) == []  # no partial clone
    assert template_bytes(directory) == template  # nothing lost

    run(pytester).assert_outcomes(passed=2)  # the next run, with room again
    assert leftovers(directory) == []


@pytest.mark.timeout(150)
def test_a_test_that_fills_the_disk_fails_with_the_driver_error_and_its_clone_is_removed(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester, directory = file_project(project)
    pytester.makepyfile(test_disk=DISK_SUITE)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("FAULT", "1")

    result = limited_run(pytester, 256 * 1024, "test_disk.py")  # room for the clones, not for the data
    result.assert_outcomes(failed=1, passed=1)
    # EFBIG from the file size limit reads "disk I/O error"; a full device (ENOSPC) would read
    # "database or disk is full": either way the driver's own error, from the test's statement
    assert "sqlite3.OperationalError: disk I/O error" in result.stdout.str()
    assert_nothing_held(pytester)
    assert leftovers(directory) == []

    monkeypatch.setenv("FAULT", "0")
    run(pytester).assert_outcomes(passed=2)
    assert leftovers(directory) == []
