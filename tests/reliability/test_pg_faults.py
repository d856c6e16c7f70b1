"""Faults on PostgreSQL: a server restart, a query that will not end, timeouts, a killed worker.

Each fault runs for real: a throwaway cluster this test starts and restarts with pg_ctl
(never the shared server on :5432), ``pg_sleep`` on the shared server, pytest-timeout's
signal and thread methods, a SIGKILLed xdist worker, a port nobody listens on. After each
one, what a run leaves is read from the server itself: ``dbscope_*`` databases whose
owner record (their comment, or the registry's ``pending`` row) names a run of that test,
sessions on them in ``pg_stat_activity``, and the run's row in ``dbscope_registry.runs``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from reliability.waiting import wait_until

from dbscope import IsolationManager

if TYPE_CHECKING:
    from conftest import MakeProject
    from reliability.figures import Figures

    from dbscope.backends.pg_cluster import ThrowawayCluster

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'dbscope[postgres]'")

# load, soak, fault or fuzz: `./run tests --all` and CI run this module, `./run tests` does not
pytestmark = pytest.mark.slow

USERS = "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
RUN_TIMEOUT = 120  # a pytester run that takes longer is hung: runpytest_subprocess raises

# Written into every inner run: each process records its run id, each test its database,
# and at the end of the session what the manager still holds.
RECORDING_CONFTEST = """
import json, os, threading
import pytest
from dbscope.plugin import MANAGER_KEY

OUT = os.environ["DBSCOPE_FAULT_OUT"]

@pytest.fixture(autouse=True)
def _record_run(dbscope):
    open(os.path.join(OUT, "run_" + dbscope.run_id), "w").close()

@pytest.fixture
def record_db(dbscope_scope, request):
    with open(os.path.join(OUT, "dbs.txt"), "a") as out:
        out.write(f"{request.node.name} {dbscope_scope.database.name}\\n")
    return dbscope_scope

def pytest_sessionfinish(session):
    manager = session.config.stash[MANAGER_KEY]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(OUT, f"state_{worker}_{os.getpid()}.json"), "w") as out:
        json.dump({"active_scopes": len(manager.active_scopes), "tracked": len(manager.global_connection_registry),
                   "metrics": manager.metrics}, out)
"""


# -- reading the server ---------------------------------------------------------------------------


def admin(url: str) -> Any:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def owned_databases(url: str, runs: set[str], *, kind: str | None = None) -> list[str]:
    """``dbscope_*`` databases whose owner record names one of ``runs``: all but templates
    (kept by design for later runs) and the registry, or those of one ``kind``."""
    with admin(url) as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE 'dbscope\\_%'"
        ).fetchall()
        pending: dict[str, str] = {}
        if any(name == "dbscope_registry" for name, _ in rows):
            with psycopg.connect(url.rsplit("/", 1)[0] + "/dbscope_registry", autocommit=True) as registry:
                pending = dict(registry.execute("SELECT name, record FROM pending").fetchall())
    found = []
    for name, comment in rows:
        try:
            record = json.loads(comment or pending.get(name) or "{}")
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("run") in runs:
            if record.get("kind") == kind or (kind is None and record.get("kind") not in ("template", "registry")):
                found.append(name)
    return sorted(found)


def sessions_on(url: str, names: list[str]) -> int:
    with admin(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", [names]).fetchone()
    return int(row[0])


def registered(url: str, runs: set[str]) -> list[str]:
    """Rows of ``runs`` still in the registry's heartbeat table."""
    with psycopg.connect(url.rsplit("/", 1)[0] + "/dbscope_registry", autocommit=True) as registry:
        return sorted(r[0] for r in registry.execute("SELECT run FROM runs WHERE run = ANY(%s)", [sorted(runs)]))


# -- the inner runs ---------------------------------------------------------------------------------


class Run:
    """Where an inner run writes what it did (run ids, databases, end-of-session state)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: set[str] = set()  # every run id recorded so far, across reset()

    def runs(self) -> set[str]:
        runs = {p.name[4:] for p in self.out.glob("run_*")}
        self.seen |= runs
        return runs

    def databases(self) -> dict[str, str]:
        path = self.out / "dbs.txt"
        lines = path.read_text().splitlines() if path.exists() else []
        return dict(line.split(" ", 1) for line in lines)

    def states(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("state_*.json"))]

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.out / "report.json").read_text())
        return report


@pytest.fixture
def inner(
    project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[pytest.Pytester, Run]]]:
    """A pytester project on ``url`` with its own template and the recording conftest.

    Afterwards the template its runs built (for this test only: its migrations carry a
    unique comment) is dropped, through dbscope's own checked drop.
    """
    made: list[tuple[str, Run]] = []

    def make(url: str, *, close_timeout: float = 2.0) -> tuple[pytest.Pytester, Run]:
        out = tmp_path / "out"
        out.mkdir()
        made.append((url, Run(out)))
        monkeypatch.setenv("DBSCOPE_FAULT_OUT", str(out))
        pytester: pytest.Pytester = project(
            ini=f"dbscope_url = {url}\ndbscope_close_timeout = {close_timeout}\n",
            migrations={"0001_users.sql": f"-- {uuid.uuid4()}\n{USERS}"},  # a template of its own
        )
        pytester.makeconftest(RECORDING_CONFTEST)
        return pytester, made[-1][1]

    yield make
    for url, run in made:
        drop_templates(url, run.seen)


def drop_templates(url: str, runs: set[str]) -> None:
    from dbscope.backends.pg_owner import drop_checked

    with contextlib.suppress(psycopg.OperationalError):  # the server of the unreachable-server test
        names = owned_databases(url, runs, kind="template")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/dbscope_registry", autocommit=True) as conn:
            for name in names:
                drop_checked(conn, name, allow_template=True, allow_kinds=("template",))


def run_inner(pytester: pytest.Pytester, run: Run, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:benchmark",
        "-p",
        "no:cacheprovider",
        f"--dbscope-report={run.out / 'report.json'}",
        *args,
        timeout=RUN_TIMEOUT,
    )


def assert_nothing_left(url: str, run: Run, runs: set[str] | None = None) -> None:
    """No database of these runs on the server, no session on them, no registry row, no scope held."""
    runs = run.runs() if runs is None else runs
    assert runs, "the inner run recorded no run id"
    wait_until(
        lambda: owned_databases(url, runs) == [],
        what=lambda: f"databases of runs {runs} dropped; left: {owned_databases(url, runs)}",
    )
    names = sorted(run.databases().values())
    assert sessions_on(url, names) == 0
    assert registered(url, runs) == []
    for state in run.states():
        assert (state["active_scopes"], state["tracked"]) == (0, 0), state


# -- 1. a server restarted mid-run ----------------------------------------------------------------------

RESTART_TESTS = """
import os, pwd, subprocess
import pytest

def restart_server():
    kwargs = {}
    if os.geteuid() == 0:  # the cluster runs as the postgres user, and so must pg_ctl
        pw = pwd.getpwnam("postgres")
        kwargs = {"user": pw.pw_uid, "group": pw.pw_gid}
    subprocess.run(
        [os.environ["PG_CTL"], "restart", "-w", "-m", "fast", "-D", os.environ["PG_DATA"], "-l", os.environ["PG_LOG"]],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        env={"PATH": os.environ["PATH"], "LC_ALL": "C"}, **kwargs,
    )

def test_1_before(db, record_db):
    db.execute("INSERT INTO users (name) VALUES ('ana')")

def test_2_restarts_the_server(db, record_db):
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    restart_server()
    with open(os.path.join(os.environ["DBSCOPE_FAULT_OUT"], "restarted"), "w"):
        pass

@pytest.mark.parametrize("n", range(5))
def test_3_after(db, record_db, dbscope, n):
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    assert db.execute("SELECT count(*) FROM users").scalar() == 1  # fresh: nobody else's row
    with record_db.connect() as raw:
        assert raw.execute("SELECT count(*) FROM users").fetchone()[0] == 1
    assert db.health_check()
"""


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    """A throwaway cluster of this test's own: the only server a test may restart."""
    from dbscope.backends.pg_cluster import ThrowawayCluster, find_bindir

    try:
        find_bindir()
    except Exception as exc:
        pytest.skip(f"no PostgreSQL server binaries for a throwaway cluster: {exc}")
    with ThrowawayCluster() as running:
        yield running


@pytest.mark.timeout(240)
def test_a_server_restart_mid_run_is_survived_and_leaves_nothing_on_the_server(
    inner: Callable[..., tuple[pytest.Pytester, Run]],
    cluster: ThrowawayCluster,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    assert cluster.bindir is not None  # a running cluster knows its binaries, data and log
    pytester, run = inner(cluster.url)
    pytester.makepyfile(test_restart=RESTART_TESTS)
    monkeypatch.setenv("PG_CTL", str(cluster.bindir / "pg_ctl"))
    monkeypatch.setenv("PG_DATA", str(cluster.data_dir))
    monkeypatch.setenv("PG_LOG", str(cluster.log_path))
    with admin(cluster.url) as conn:
        started_at = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]

    started = time.monotonic()
    result = run_inner(pytester, run, "-rA")
    elapsed = time.monotonic() - started

    output = result.stdout.str() + result.stderr.str()
    assert (run.out / "restarted").exists(), output  # the server really restarted mid-run
    with admin(cluster.url) as conn:
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] > started_at
    # every test after the restart recovered on a fresh database of its own: no opaque driver error
    result.assert_outcomes(passed=7)
    assert "AdminShutdown" not in output and "OperationalError" not in output
    databases = run.databases()
    assert len(set(databases.values())) == len(databases) == 7, databases  # never a database shared
    # the pool either kept filling, or said why it stopped and that it fills again
    stopped = [line for line in output.splitlines() if "clone pool stopped filling" in line]
    for line in stopped:  # a dbscope message naming the server and what to do, then a recovery
        assert f"127.0.0.1:{cluster.port}" in line and ("restarted, or stopped" in line or "Start it" in line), line
        assert "clone pool filling again" in output
    report = run.report()
    after = [t for t in report["tests"] if "test_3_after" in t["nodeid"] and t["outcome"] == "passed"]
    assert len(after) == 5
    assert_nothing_left(cluster.url, run)  # the janitor survived: it dropped every database after the restart
    figures.record(
        restart_run_s=round(elapsed, 2),
        tests_after_restart_passed=len(after),
        pool_hits=report["metrics"]["pool_hits"],
        pool_misses=report["metrics"]["pool_misses"],
        pool_stopped_and_refilled="clone pool filling again" in output,
    )


# -- 2. a query still running when the scope ends -----------------------------------------------------


@pytest.fixture
def manager(pg_url: str, tmp_path: Path) -> Iterator[IsolationManager]:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_users.sql").write_text(f"-- {uuid.uuid4()}\n{USERS}")
    with IsolationManager(pg_url, migrations=str(migrations), close_timeout=1.0) as running:
        yield running
    drop_templates(pg_url, {running.run_id})


def _sleeping_connection(scope: Any, pg_url: str, how: str) -> tuple[Any, Callable[[], None]]:
    """A connection of ``how`` kind on the scope's database and a function running pg_sleep(600) on it."""
    if how == "client":
        client = scope.client()
        return client, lambda: client.execute("SELECT pg_sleep(600)")
    if how == "client.connect()":
        conn = scope.client().connect()
    elif how == "scope.connect()":
        conn = scope.connect()
    else:  # opened by the test itself, unknown to dbscope: a leak that DROP ... WITH (FORCE) ends
        conn = psycopg.connect(scope.url("dsn"), autocommit=True)
    return conn, lambda: conn.execute("SELECT pg_sleep(600)")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["client", "client.connect()", "scope.connect()", "the test's own connection"])
def test_a_query_running_at_scope_end_is_stopped_and_the_database_dropped(
    manager: IsolationManager, pg_url: str, how: str, figures: Figures
) -> None:
    threads_before = set(threading.enumerate())
    outcome: list[BaseException] = []
    with manager.scope(f"sleeps via {how}") as scope:
        name = scope.database.name
        conn, sleep = _sleeping_connection(scope, pg_url, how)

        def runner() -> None:
            try:
                sleep()
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=runner, name="pg-sleeper")
        worker.start()
        with admin(pg_url) as watcher:
            wait_until(
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                        "AND query LIKE 'SELECT pg_sleep%%'",
                        [name],
                    ).fetchone()[0]
                    == 1
                ),
                what="pg_sleep running on the scope's database",
            )
        ending = time.perf_counter()
    scope_end_s = time.perf_counter() - ending
    worker.join(30)
    assert not worker.is_alive(), "the statement was never stopped"
    # dbscope's own connections get the server's cancel; a connection dbscope does not know
    # is ended with its database (DROP ... WITH (FORCE) terminates it)
    expected = psycopg.errors.AdminShutdown if how == "the test's own connection" else psycopg.errors.QueryCanceled
    assert len(outcome) == 1 and isinstance(outcome[0], expected), outcome
    assert scope_end_s < 1.0 + 10.0  # within the close timeout (1 s), with room for a noisy machine
    assert manager.active_scopes == {} and manager.global_connection_registry == set()
    leaked = manager.metrics["connections_leaked"]
    manager.close()  # waits for the background drop
    assert owned_databases(pg_url, {manager.run_id}) == []
    assert sessions_on(pg_url, [name]) == 0
    assert [t for t in threading.enumerate() if t not in threads_before] == []
    assert leaked == (1 if how == "the test's own connection" else 0)
    conn.close()
    figures.record(scope_end_ms=round(scope_end_s * 1000, 1), stopped_by=type(outcome[0]).__name__)


# -- 3. pytest-timeout mid-query -------------------------------------------------------------------------

TIMEOUT_TESTS = """
import pytest

@pytest.mark.timeout(2, method="{method}")
def test_1_stuck_in_pg_sleep(db, record_db):
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    db.execute("SELECT pg_sleep(600)")

def test_2_next(db, record_db):
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    assert db.execute("SELECT count(*) FROM users").scalar() == 1
"""


@pytest.mark.timeout(120)
def test_a_signal_timeout_mid_query_fails_the_test_and_leaves_nothing(
    inner: Callable[..., tuple[pytest.Pytester, Run]], pg_url: str, figures: Figures
) -> None:
    pytester, run = inner(pg_url)
    pytester.makepyfile(test_timeout=TIMEOUT_TESTS.format(method="signal"))
    result = run_inner(pytester, run)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])
    databases = run.databases()
    assert databases["test_1_stuck_in_pg_sleep"] != databases["test_2_next"]
    assert_nothing_left(pg_url, run)
    stuck = next(t for t in run.report()["tests"] if t["nodeid"].endswith("test_1_stuck_in_pg_sleep"))
    assert stuck["outcome"] == "failed"
    figures.record(timed_out_teardown_ms=round(stuck["teardown_ms"], 1))


@pytest.mark.timeout(120)
def test_a_thread_timeout_kills_the_run_and_the_next_run_sweeps_what_it_left(
    inner: Callable[..., tuple[pytest.Pytester, Run]], pg_url: str, figures: Figures
) -> None:
    pytester, run = inner(pg_url)
    pytester.makepyfile(test_timeout=TIMEOUT_TESTS.format(method="thread"))
    result = run_inner(pytester, run)
    assert result.ret == 1  # pytest-timeout's os._exit(1): no teardown, no session finish
    assert "Timeout" in result.stdout.str() + result.stderr.str()
    assert "test_2_next" not in run.databases() and run.states() == []
    dead = run.runs()
    left = owned_databases(pg_url, dead)
    stuck = run.databases()["test_1_stuck_in_pg_sleep"]
    assert stuck in left  # nothing cleaned: the process exited mid-test
    assert registered(pg_url, dead) == sorted(dead)
    orphaned = sessions_on(pg_url, [stuck])  # the server may still be running the orphaned pg_sleep

    (pytester.path / "test_timeout.py").unlink()
    pytester.makepyfile(test_next="def test_next(db, record_db):\n    assert db.health_check()\n")
    result = run_inner(pytester, run)
    result.assert_outcomes(passed=1)
    assert_nothing_left(pg_url, run, dead | run.runs())
    figures.record(dead_run_databases_swept=len(left), orphaned_sessions_ended=orphaned)


# -- 4. a worker SIGKILLed under xdist -------------------------------------------------------------------

XDIST_TESTS = """
import os, signal
import pytest

def test_killed(db, record_db):
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    os.kill(os.getpid(), signal.SIGKILL)

@pytest.mark.parametrize("n", range(6))
def test_isolated(db, record_db, n):
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    assert db.execute("SELECT count(*) FROM users").scalar() == 1
"""


@pytest.mark.timeout(180)
def test_a_sigkilled_xdist_worker_leaves_nothing_after_the_next_run(
    inner: Callable[..., tuple[pytest.Pytester, Run]], pg_url: str, figures: Figures
) -> None:
    pytester, run = inner(pg_url)
    pytester.makepyfile(test_workers=XDIST_TESTS)
    result = run_inner(pytester, run, "-n", "2")
    result.assert_outcomes(failed=1, passed=6)
    result.stdout.fnmatch_lines(["*crashed while running*test_killed*"])
    first = run.runs()
    assert len(first) >= 2  # each worker (and one replacing the killed worker) is a run of its own
    killed_db = run.databases()["test_killed"]
    left_after_kill = len(owned_databases(pg_url, first))

    (pytester.path / "test_workers.py").unlink()
    pytester.makepyfile(test_next="def test_next(db, record_db):\n    assert db.health_check()\n")
    result = run_inner(pytester, run, "-n", "2")
    result.assert_outcomes(passed=1)
    assert_nothing_left(pg_url, run, first | run.runs())
    assert sessions_on(pg_url, [killed_db]) == 0
    figures.record(killed_worker_databases_left_after_run=left_after_kill)


# -- 5. no server at session start -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_unreachable_server_at_session_start_is_a_clear_error_without_the_password(
    inner: Callable[..., tuple[pytest.Pytester, Run]], pg_url: str, figures: Figures
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:s3cr3t-pw@127.0.0.1:{port}/postgres"
    pytester, run = inner(url)
    pytester.makepyfile(test_one="def test_a(db):\n    pass\n\ndef test_b(db):\n    pass\n")
    started = time.monotonic()
    result = run_inner(pytester, run)
    elapsed = time.monotonic() - started
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the session stops before any test module is imported
    assert "test_a" not in output and "passed" not in output
    assert f"cannot reach the PostgreSQL server at 127.0.0.1:{port}" in output
    assert "postgresql+proc://" in output and "pg_ctlcluster" in output  # how to start or point at one
    assert "postgres:***@127.0.0.1" in output and "s3cr3t-pw" not in output
    assert elapsed < 60
    figures.record(unreachable_run_s=round(elapsed, 2))


# -- 6. a session the server cut is explained, not passed on raw ---------------------------------


@pytest.mark.timeout(60)
def test_a_session_the_server_cut_is_explained_with_what_to_do(pg_url: str) -> None:
    """The error a clone gets when a restart cuts its session mid-statement says so, and what to do."""
    from dbscope.backends import postgresql as pg
    from dbscope.backends.pg_connect import START_ADVICE

    victim = psycopg.connect(pg_url, autocommit=True)
    with psycopg.connect(pg_url, autocommit=True) as killer:  # what a fast shutdown does to every session
        killer.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
    with pytest.raises(psycopg.OperationalError) as cut:
        victim.execute("SELECT 1")
    victim.close()
    backend = pg.PostgreSQLBackend(pg_url, sweep=False)
    try:
        message = str(backend._error(cut.value, "cannot create database dbscope_x"))
        where = backend.address.where
    finally:
        backend.close()
    assert message.startswith(f"cannot create database dbscope_x on {where}: the server closed the connection (")
    assert "it restarted, or stopped. dbscope reconnects for the next test" in message
    assert message.endswith(f"{START_ADVICE}.")
