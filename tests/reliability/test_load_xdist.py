"""LOAD: a generated 2,000-test suite under ``pytest -n 2``, on every backend, leaves nothing behind.

SQLite in memory, SQLite files, PostgreSQL on a throwaway cluster and the shared PostgreSQL
server run 2,000 tests each.

Each run is a real pytest subprocess with two xdist workers and the plugin loaded by its
entry point. Every generated test writes a row unique to it (its node id, with an e-mail
that is the same in every test and UNIQUE in the schema) and asserts that its table holds
exactly the seed rows plus that row: two tests sharing a database would fail both ways.

What is checked after each run:

* the JSON report (``--dbscope-report``): all passed, one record per generated test,
  one scope each, no scope or connection leaks, connections opened == closed;
* every worker's own manager (written by the generated conftest at session end, before
  dbscope's own cleanup there could hide a scope left active): scopes
  created == destroyed == its tests, connections created == closed, no emergency
  cleanup, no active scope; its fd and thread counts stay flat over ~1,000 tests;
* the backend: no ``dbscope_*`` files but the kept template in the directory (SQLite
  files); no database, registry row or connection of the run on the server (PostgreSQL).
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from reliability.figures import Figures

# load, soak, fault or fuzz: `./run tests --all` and CI run this module, `./run tests` does not
pytestmark = pytest.mark.slow

TESTS = 2000
MODULES = 4  # the generated tests are spread over this many modules
SEED_NAMES = ["seed-ada", "seed-bob", "seed-cy"]

# A fixed comment gives this file's schema a template of its own, reused by later runs
# (dbscope keeps templates by design), instead of one more template per run.
SCHEMA = {
    "sqlite": "-- tests/reliability/test_load_xdist.py\n"
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT NOT NULL UNIQUE);\n",
    "postgresql": "-- tests/reliability/test_load_xdist.py\n"
    "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, email TEXT NOT NULL UNIQUE);\n",
}
SEED = "".join(f"INSERT INTO items (name, email) VALUES ('{name}', '{name}@example.com');\n" for name in SEED_NAMES)

# The generated suite's conftest: each worker writes what its own manager and process
# looked like at the end of the session, next to the report.
PROBE_CONFTEST = """
import json, os, threading
from pathlib import Path

import pytest

STATE = {"manager": None, "seen": 0}


def _fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="session", autouse=True)
def _keep_manager(dbscope):
    STATE["manager"] = dbscope


def pytest_runtest_logfinish(nodeid, location):
    fds, threads = _fds(), threading.active_count()
    STATE["seen"] += 1
    if STATE["seen"] == 1:  # after the first test: backend, template and clone pool exist
        STATE.update(fds_first=fds, threads_first=threads, fds_max=fds, threads_max=threads)
    STATE["fds_max"] = max(STATE["fds_max"], fds)
    STATE["threads_max"] = max(STATE["threads_max"], threads)


@pytest.hookimpl(tryfirst=True)  # before dbscope's own cleanup at session end: what the tests left
def pytest_sessionfinish(session):
    manager = STATE["manager"]
    if manager is None:  # the xdist controller runs no test
        return
    out = {k: v for k, v in STATE.items() if k != "manager"}
    out.update(
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
        run_id=manager.run_id,
        metrics=manager.metrics,
        stats=manager.get_stats(),
        fds_last=_fds(),
        threads_last=threading.active_count(),
    )
    out["url"] = manager.config.url
    Path(os.environ["LOAD_PROBE_DIR"], out["worker"] + ".json").write_text(json.dumps(out))


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    # The xdist controller, its workers gone, before dbscope stops the throwaway cluster
    # (postgresql+proc://, whose URL the plugin hands to the workers through xdist):
    # every dbscope database, registry row and client session still on that cluster.
    from dbscope import plugin

    server = config.stash.get(plugin.CLUSTER_KEY, None)
    if server is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    url = server.url
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        databases = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE 'dbscope%'"
        ).fetchall()
        sessions = conn.execute(
            "SELECT datname, application_name FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    with psycopg.connect(url.rsplit("/", 1)[0] + "/dbscope_registry", autocommit=True) as conn:
        runs = conn.execute("SELECT run FROM runs").fetchall()
    out = {"url": url, "databases": databases, "sessions": sessions, "runs": runs}
    Path(os.environ["LOAD_PROBE_DIR"], "cluster.json").write_text(json.dumps(out))
"""

TEST_MODULE = """
import os

import pytest
import sqlalchemy as sa

SEED = {seed!r}


@pytest.mark.parametrize("n", range({count}))
def test_a_row_of_its_own(db, db_url, request, n):
    mine = request.node.nodeid
    assert os.environ["DATABASE_URL"] == db_url
    db.execute("INSERT INTO items (name, email) VALUES (?, ?)", [mine, "same@example.com"])
    assert [r["name"] for r in db.execute("SELECT name FROM items ORDER BY id").rows] == SEED + [mine]
    if n % 10 == 0:  # another connection, by the URL the app under test would use, sees the same
        engine = sa.create_engine(db_url)
        try:
            with engine.connect() as conn:
                names = [r[0] for r in conn.execute(sa.text("SELECT name FROM items ORDER BY id"))]
        finally:
            engine.dispose()
        assert names == SEED + [mine]
"""


def make_suite(pytester: pytest.Pytester, dialect: str, tests: int) -> set[str]:
    """Write the generated suite; return the node ids of its tests."""
    (pytester.mkdir("migrations") / "0001_items.sql").write_text(SCHEMA[dialect])
    pytester.makefile(".sql", seed=SEED)
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = migrations\ndbscope_seed = seed.sql\n")
    pytester.makeconftest(PROBE_CONFTEST)
    per_module = tests // MODULES
    body = textwrap.dedent(TEST_MODULE).format(seed=SEED_NAMES, count=per_module)
    pytester.makepyfile(**{f"test_load_{k}": body for k in range(MODULES)})
    return {f"test_load_{k}.py::test_a_row_of_its_own[{n}]" for k in range(MODULES) for n in range(per_module)}


def run_load(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    url: str | None,
    *,
    dialect: str,
    timeout: float,
    tests: int = TESTS,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], float, str]:
    """Run the suite under -n 2; return the report, each worker's probe, the wall time and the run's uid."""
    expected = make_suite(pytester, dialect, tests)
    probes = pytester.mkdir("probes")
    monkeypatch.setenv("LOAD_PROBE_DIR", str(probes))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DBSCOPE_URL", raising=False)
    testrunuid = f"load{uuid.uuid4().hex[:12]}"
    args = ["-n", "2", "-p", "no:benchmark", "-q", "--timeout=120", f"--testrunuid={testrunuid}"]
    args.append("--dbscope-report=report.json")
    if url is not None:
        args.append(f"--dbscope-url={url}")
    started = time.perf_counter()
    result = pytester.runpytest_subprocess(*args, timeout=timeout)
    wall_s = time.perf_counter() - started
    result.assert_outcomes(passed=tests)
    assert result.ret == pytest.ExitCode.OK
    report = json.loads((pytester.path / "report.json").read_text())
    workers = {p.stem: json.loads(p.read_text()) for p in probes.glob("gw*.json")}
    check_report(report, expected)
    check_workers(report, workers)
    return report, workers, wall_s, testrunuid


def check_report(report: dict[str, Any], expected: set[str]) -> None:
    """All passed, one clean record per generated test, each with a scope of its own."""
    summary, metrics, tests, n = report["summary"], report["metrics"], report["tests"], len(expected)
    assert summary["tests"] == summary["passed"] == n and summary["failures"] == 0
    assert summary["workers"] == ["gw0", "gw1"] and summary["missing_workers"] == []
    assert summary["scope_leaks"] == summary["connection_leaks"] == summary["connections_leaked"] == 0
    nodeids = [t["nodeid"] for t in tests]
    assert len(nodeids) == len(set(nodeids)) == n and set(nodeids) == expected
    assert {t["outcome"] for t in tests} == {"passed"}
    assert all(t["scopes"] == 1 and not t["scope_leaked"] and t["connections_leaked"] == 0 for t in tests)
    assert all(t["connections_opened"] == t["connections_closed"] >= 1 for t in tests)
    assert all(
        t["warnings"] == [] or {w["kind"] for w in t["warnings"]} <= {"slow_test", "memory_growth"} for t in tests
    )
    scope_ids = [sid for t in tests for sid in t["scope_ids"]]
    assert len(set(scope_ids)) == n
    assert metrics["scopes_created"] == metrics["scopes_destroyed"] == n
    assert metrics["connections_created"] == metrics["connections_closed"] >= n
    assert metrics["connections_leaked"] == metrics["emergency_cleanups"] == metrics["cleanup_failures"] == 0


def check_workers(report: dict[str, Any], workers: dict[str, dict[str, Any]]) -> None:
    """Each worker's manager created and destroyed a scope per test it ran, and nothing grew."""
    assert set(workers) == {"gw0", "gw1"}
    for name, probe in workers.items():
        ran = [t for t in report["tests"] if t["worker"] == name]
        assert ran, f"{name} ran no test: the load was not shared"
        m = probe["metrics"]
        assert m["scopes_created"] == m["scopes_destroyed"] == len(ran) == probe["seen"], (name, m)
        assert m["connections_created"] == m["connections_closed"] == sum(t["connections_opened"] for t in ran)
        assert m["connections_leaked"] == m["emergency_cleanups"] == m["cleanup_failures"] == 0, (name, m)
        assert probe["stats"]["active_scope_count"] == probe["stats"]["active_connection_count"] == 0
        assert probe["stats"]["scopes"] == []
        # ~1,000 tests a worker: a descriptor or thread kept per test would show as hundreds
        assert probe["fds_max"] - probe["fds_first"] <= 20, (name, probe)
        assert probe["fds_last"] - probe["fds_first"] <= 10, (name, probe)
        assert probe["threads_max"] - probe["threads_first"] <= 4, (name, probe)
        assert probe["threads_last"] <= probe["threads_first"] + 1, (name, probe)


def record_figures(
    figures: Figures, backend: str, report: dict[str, Any], workers: dict[str, Any], wall_s: float
) -> None:
    summary = report["summary"]
    figures.record(
        **{
            f"{backend}_tests": summary["tests"],
            f"{backend}_wall_s": round(wall_s, 1),
            f"{backend}_tests_per_s": round(summary["tests"] / wall_s, 1),
            f"{backend}_avg_setup_ms": summary["average_setup_ms"],
            f"{backend}_avg_teardown_ms": summary["average_teardown_ms"],
            f"{backend}_fd_growth_max": max(p["fds_max"] - p["fds_first"] for p in workers.values()),
            f"{backend}_thread_growth_max": max(p["threads_max"] - p["threads_first"] for p in workers.values()),
        }
    )


# -- SQLite ------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_2000_tests_in_memory_under_xdist_leave_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    report, workers, wall_s, _ = run_load(pytester, monkeypatch, None, dialect="sqlite", timeout=240)
    assert report["settings"]["url"] == "sqlite://"
    record_figures(figures, "sqlite_memory", report, workers, wall_s)


@pytest.mark.timeout(300)
def test_2000_tests_on_sqlite_files_under_xdist_leave_only_the_template(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    directory = pytester.mkdir("dbs")
    report, workers, wall_s, _ = run_load(
        pytester, monkeypatch, f"sqlite:///{directory}", dialect="sqlite", timeout=240
    )
    left = sorted(p.name for p in directory.iterdir())
    # the template file is kept for later runs (by design); no clone, owner or temporary file
    assert len(left) == 1 and left[0].startswith("dbscope_tpl_") and left[0].endswith(".sqlite3"), left
    record_figures(figures, "sqlite_file", report, workers, wall_s)


# -- PostgreSQL --------------------------------------------------------------------------


def leftovers_on_server(pg_url: str, run_ids: list[str], testrunuid: str) -> dict[str, list[Any]]:
    """What the run left on the server: its databases, registry rows and sessions (all should be none)."""
    import psycopg

    found: dict[str, list[Any]] = {}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE 'dbscope\\_%'"
        ).fetchall()
        mine = []
        for name, comment in rows:
            try:
                owner = json.loads(comment) if comment else {}
            except ValueError:
                owner = {}
            by_name = any(name.startswith(f"dbscope_{run}_") for run in run_ids)
            by_owner = owner.get("kind") != "template" and (
                owner.get("run") in run_ids or owner.get("session") == testrunuid
            )
            if by_name or by_owner:
                mine.append((name, owner))
        found["databases"] = mine
        found["sessions"] = conn.execute(
            "SELECT datname, application_name, state FROM pg_stat_activity "
            "WHERE datname LIKE ANY(%s) OR application_name LIKE ANY(%s)",
            [[f"dbscope\\_{run}\\_%" for run in run_ids], [f"dbscope {run}%" for run in run_ids]],
        ).fetchall()
    with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/dbscope_registry", autocommit=True) as registry:
        found["registry_rows"] = registry.execute(
            "SELECT run, session FROM runs WHERE run = ANY(%s) OR session = %s", [run_ids, testrunuid]
        ).fetchall()
    return found


@pytest.mark.timeout(300)
def test_2000_tests_on_a_throwaway_cluster_under_xdist_leave_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, figures: Figures, pg_url: str
) -> None:
    # pg_url: the server binaries and psycopg are there (the cluster needs both); its server is not used
    report, workers, wall_s, _ = run_load(
        pytester, monkeypatch, "postgresql+proc://", dialect="postgresql", timeout=240
    )
    on_cluster = json.loads((pytester.path / "probes" / "cluster.json").read_text())
    assert {p["url"] for p in workers.values()} == {on_cluster["url"]}  # one cluster served both workers
    names = [(name, json.loads(comment)["kind"]) for name, comment in on_cluster["databases"]]
    # only the registry and the template: no clone, pool database or snapshot of the run
    assert sorted(kind for _, kind in names) == ["registry", "template"], names
    assert on_cluster["sessions"] == [] and on_cluster["runs"] == []
    record_figures(figures, "postgresql_cluster", report, workers, wall_s)


# The shared server clones on disk: ~0.14 s a clone when idle (2,000 tests in ~3 min under
# -n 2), 0.3-1.7 s while other suites use it (229 s measured then). The issue asks for
# 2,000 on both backends, and CI's machine is otherwise idle, so the server runs them too,
# with room in the timeouts for a busy machine.
SERVER_TESTS = 2000


@pytest.mark.timeout(900)
def test_2000_tests_on_the_postgresql_server_under_xdist_leave_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, figures: Figures, pg_url: str
) -> None:
    report, workers, wall_s, testrunuid = run_load(
        pytester, monkeypatch, pg_url, dialect="postgresql", timeout=840, tests=SERVER_TESTS
    )
    run_ids = sorted(p["run_id"] for p in workers.values())
    assert len(set(run_ids)) == 2 and all(len(r) == 8 for r in run_ids)
    assert leftovers_on_server(pg_url, run_ids, testrunuid) == {"databases": [], "sessions": [], "registry_rows": []}
    record_figures(figures, "postgresql_server", report, workers, wall_s)
