"""End-to-end on a real PostgreSQL server: pytest runs of real test files with dbscope."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest
from reliability.waiting import wait_until

if TYPE_CHECKING:
    from conftest import MakeProject

USERS = "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);"

RUN_ID_TEST = """
import os

def test_record_run_id(dbscope, db):
    with open(os.path.join(os.environ["RUN_IDS_DIR"], dbscope.run_id), "w"):
        pass
"""


def databases_of(pg_url: str, run_ids: list[str]) -> list[str]:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbscope\\_%'")]
    return [n for n in names if any(f"_{run}_" in n for run in run_ids)]


def sessions_of(pg_url: str, run_ids: list[str]) -> list[str]:
    """The server's sessions of these runs (dbscope names each ``dbscope <run> ...``)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity")]
    return [n for n in names if any(n.startswith(f"dbscope {run}") for run in run_ids)]


class MakePgProject(Protocol):
    """The ``pg_project`` fixture: ``pg_project(ini=...)`` returns the pytester."""

    def __call__(self, ini: str = "") -> pytest.Pytester: ...


@pytest.fixture
def pg_project(project: MakeProject, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakePgProject:
    """A project on the test server, with a migrations fingerprint of its own."""
    monkeypatch.setenv("RUN_IDS_DIR", str(tmp_path))

    def make(ini: str = "") -> pytest.Pytester:
        # a unique comment gives this test a template of its own
        return project(
            ini=f"dbscope_url = {pg_url}\n" + ini,
            migrations={"0001_users.sql": f"-- {uuid.uuid4()}\n{USERS}"},
        )

    return make


def test_clone_under_xdist_leaves_no_database_behind(pg_project: MakePgProject, pg_url: str, tmp_path: Path) -> None:
    pytester = pg_project()
    pytester.makepyfile(
        test_users="""
        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_isolated(db, n):
            db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["a", "same@example.com"])
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1
        """,
        test_ids=RUN_ID_TEST,
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["scopes created: 9, destroyed: 9", "*leaked: 0"])
    run_ids = [p.name for p in tmp_path.iterdir() if len(p.name) == 8]
    assert run_ids
    assert databases_of(pg_url, run_ids) == []


def test_rollback_on_postgresql(pg_project: MakePgProject) -> None:
    pytester = pg_project(ini="dbscope_strategy = rollback\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_rolled_back(db, n):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
            db.execute(
                "INSERT INTO users (name, email) VALUES (:name, :email)", {"name": "a", "email": "a@example.com"}
            )
            with pytest.raises(Exception, match="duplicate key"):
                with db.transaction() as tx:
                    tx.execute("INSERT INTO users (name, email) VALUES ('b', 'a@example.com')")
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_reset_on_postgresql_keeps_an_import_time_connection_working(pg_project: MakePgProject) -> None:
    pytester = pg_project(ini="dbscope_strategy = reset\ndbscope_autouse = true\ndbscope_env_var = APP_DSN:dsn\n")
    pytester.makeconftest(
        """
        import os, psycopg
        APP = psycopg.connect(os.environ["APP_DSN"], autocommit=True)  # at import, kept open
        """
    )
    pytester.makepyfile(
        """
        import pytest, conftest

        @pytest.mark.parametrize("n", range(4))
        def test_clean_each_time(n):
            assert conftest.APP.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)
            conftest.APP.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
        """
    )
    # in a subprocess: the conftest's module-level connection must not outlive that run here
    pytester.runpytest_subprocess("-p", "no:benchmark").assert_outcomes(passed=4)


def test_a_leaked_connection_is_reported_and_the_database_still_dropped(
    pg_project: MakePgProject, pg_url: str, tmp_path: Path
) -> None:
    pytester = pg_project()
    pytester.makepyfile(
        test_leak="""
        import os, psycopg

        KEPT = []

        def test_leaky(db):
            KEPT.append(psycopg.connect(os.environ["DATABASE_URL"].replace("+psycopg", "")))
        """,
        test_ids=RUN_ID_TEST,
    )
    result = pytester.runpytest_subprocess("-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*leaked: 1", "connection leak in test_leak.py::test_leaky: 1 connection(s) left open"]
    )
    run_ids = [p.name for p in tmp_path.iterdir() if len(p.name) == 8]
    assert databases_of(pg_url, run_ids) == []


def test_independent_pytest_processes_share_one_server_and_build_the_template_once(
    pg_project: MakePgProject, tmp_path: Path
) -> None:
    pytester = pg_project(ini="dbscope_seed = seeding:run\n")
    builds = tmp_path / "builds.log"
    pytester.makepyfile(
        seeding=f"""
        def run(conn):
            with open({str(builds)!r}, "a") as log:
                log.write("built\\n")
            conn.execute("INSERT INTO users (name, email) VALUES ('seed', 'seed@example.com')")
        """,
        test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_seeded(db, n):
            db.execute("INSERT INTO users (name, email) VALUES ('x', 'x@example.com')")
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 2
        """,
    )
    env = {**os.environ, "PYTHONPATH": str(pytester.path)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:benchmark", "-p", "no:cacheprovider"]
    runs = [
        subprocess.Popen(
            command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], "\n".join(outputs)
    assert all("5 passed" in out for out in outputs)
    assert builds.read_text() == "built\n"  # three processes, one template build


def test_a_killed_run_leaves_nothing_the_next_run_does_not_clean(
    pg_project: MakePgProject, pg_url: str, tmp_path: Path
) -> None:
    pytester = pg_project()
    pytester.makepyfile(
        test_dies="""
        import os

        def test_killed_mid_test(dbscope, db):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            with open(os.path.join(os.environ["RUN_IDS_DIR"], dbscope.run_id), "w"):
                pass
            os._exit(9)  # the worker dies: no teardown, no atexit
        """
    )
    dead = pytester.runpytest_subprocess("-p", "no:benchmark")
    assert dead.ret == 9
    run_ids = [p.name for p in tmp_path.iterdir() if len(p.name) == 8]
    assert databases_of(pg_url, run_ids), "the killed run should have left its database"
    # A statement the killed run had sent (a clone its pool was creating) runs to its end on the
    # server, seconds on a busy one, and only then is its database there to sweep and its session
    # gone: the next run sweeps what the killed run left once the server has finished it.
    wait_until(lambda: not sessions_of(pg_url, run_ids), what=lambda: f"sessions {sessions_of(pg_url, run_ids)} to end")

    (pytester.path / "test_dies.py").unlink()
    pytester.makepyfile(test_next="def test_next(db): pass")
    pytester.runpytest_subprocess("-p", "no:benchmark").assert_outcomes(passed=1)
    assert databases_of(pg_url, run_ids) == []


def test_one_throwaway_cluster_serves_every_xdist_worker(
    project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_bindir: Path
) -> None:
    monkeypatch.setenv("PORTS_DIR", str(tmp_path))
    pytester = project(ini="dbscope_url = postgresql+proc://\n", migrations={"0001_users.sql": USERS})
    pytester.makepyfile(
        """
        import os, pytest
        from urllib.parse import urlsplit

        @pytest.mark.parametrize("n", range(6))
        def test_on_the_cluster(db, n):
            port = urlsplit(os.environ["DATABASE_URL"]).port
            open(os.path.join(os.environ["PORTS_DIR"], f"{port}-{os.environ['PYTEST_XDIST_WORKER']}"), "w").close()
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
        """
    )
    pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark").assert_outcomes(passed=6)
    seen = {p.name for p in tmp_path.iterdir() if "-gw" in p.name}
    assert {name.split("-")[0] for name in seen} == {next(iter(seen)).split("-")[0]}  # one port
    assert {name.split("-")[1] for name in seen} == {"gw0", "gw1"}


def test_sync_async_and_dsn_urls_reach_the_test_database(pg_project: MakePgProject) -> None:
    pytester = pg_project(ini="dbscope_env_var =\n    DATABASE_URL\n    ASYNC_URL:async\n    PLAIN_DSN:dsn\n")
    pytester.makepyfile(
        """
        import asyncio, os
        import psycopg
        import sqlalchemy as sa

        def test_every_driver_sees_the_same_rows(db, db_engine, db_async_engine):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            assert os.environ["ASYNC_URL"].startswith("postgresql+asyncpg://")
            with db_engine.connect() as conn:  # psycopg through SQLAlchemy
                assert conn.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() == 1

            async def count():
                async with db_async_engine.connect() as conn:  # asyncpg
                    return (await conn.execute(sa.text("SELECT COUNT(*) FROM users"))).scalar()

            assert asyncio.run(count()) == 1
            with psycopg.connect(os.environ["PLAIN_DSN"]) as raw:  # a plain libpq URL
                assert raw.execute("SELECT COUNT(*) FROM users").fetchone() == (1,)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:benchmark")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*leaked: 0"])
