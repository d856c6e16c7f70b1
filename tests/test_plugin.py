"""End-to-end: real pytest runs of real test files with the dbscope plugin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import MakeProject


def test_every_test_gets_its_own_fresh_migrated_database(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_insert_the_same_unique_row(db, n):
            db.execute("INSERT INTO users (name, email) VALUES (?, ?)", [f"u{n}", "same@example.com"])
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*dbscope isolation report*", "scopes created: 5, destroyed: 5"])


def test_runs_under_xdist_with_one_combined_report(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.parametrize("n", range(12))
        def test_isolated(db, n):
            db.execute("INSERT INTO users (name, email) VALUES ('x', 'x@example.com')")
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 1
            assert os.environ["PYTEST_XDIST_WORKER"] in os.environ["DATABASE_URL"]
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["scopes created: 12, destroyed: 12", "*leaked: 0"])


def test_a_broken_migration_fails_the_session_once_naming_file_and_statement(project: MakeProject) -> None:
    pytester = project(
        migrations={
            "0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);",
            "0002_broken.sql": "CREATE INDEX users_email ON users (id);\nINSERT INTO userz VALUES (1);",
        }
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_needs_db(db, n):
            pass
        """
    )
    result = pytester.runpytest()
    assert "test_needs_db" not in result.stdout.str()  # the session stops before collecting: once, not per test
    result.stderr.fnmatch_lines(
        [
            "ERROR: dbscope: MigrationError: migration failed in *0002_broken.sql, line 2 (statement 2): "
            "no such table: userz",
            "*INSERT INTO userz VALUES (1)*",
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_collect_only_does_not_build_the_template(project: MakeProject) -> None:
    pytester = project(migrations={"0001_broken.sql": "THIS IS NOT SQL;"})
    pytester.makepyfile("def test_needs_db(db): pass")
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_needs_db*"])


def test_the_template_is_built_once_per_process(project: MakeProject) -> None:
    pytester = project(ini="dbscope_seed = seeding:run\n")
    pytester.makepyfile(
        seeding="""
        CALLS = []

        def run(conn):
            CALLS.append(1)
            conn.execute("INSERT INTO users (name, email) VALUES ('seeded', 's@example.com')")
        """,
        test_once="""
        import pytest, seeding

        @pytest.mark.parametrize("n", range(6))
        def test_seeded(db, n):
            assert db.execute("SELECT name FROM users").scalar() == "seeded"
            assert len(seeding.CALLS) == 1
        """,
    )
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=6)


@pytest.mark.parametrize(
    ("how", "origin"),
    [
        ("cli", "--dbscope-strategy on the command line"),
        ("env", "the DBSCOPE_STRATEGY environment variable"),
        ("ini", "dbscope_strategy in config file pytest.ini"),
    ],
)
def test_a_bad_setting_names_where_it_came_from(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, how: str, origin: str
) -> None:
    pytester = project(ini="dbscope_strategy = from-ini\n" if how == "ini" else "")
    pytester.makepyfile("def test_nothing(): pass")
    args = ["--dbscope-strategy", "from-cli"] if how == "cli" else []
    if how == "env":
        monkeypatch.setenv("DBSCOPE_STRATEGY", "from-env")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    valid = "must be one of clone, reset, rollback, worker"
    result.stderr.fnmatch_lines([f"*dbscope_strategy = 'from-{how}' (from {origin}) is not valid: {valid}*"])


def test_command_line_beats_environment_beats_ini(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytester = project(ini="dbscope_url = sqlite:///from-ini\n")
    pytester.makepyfile(
        """
        def test_url(dbscope):
            print("URL", dbscope.config.url)
        """
    )
    monkeypatch.setenv("DBSCOPE_URL", "sqlite:///from-env")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*URL sqlite:///from-env"])
    pytester.runpytest("-s", "--dbscope-url", "sqlite://").stdout.fnmatch_lines(["*URL sqlite://"])
    monkeypatch.delenv("DBSCOPE_URL")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*URL sqlite:///from-ini"])


def test_env_vars_are_set_for_each_test_and_restored(project: MakeProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DB", "untouched")
    pytester = project(ini="dbscope_env_var =\n    DATABASE_URL\n    APP_DB:dsn\n    APP_ASYNC:async\n")
    pytester.makepyfile(
        """
        import os, sqlite3

        def test_urls(db, db_url, dbscope_scope):
            assert os.environ["DATABASE_URL"] == db_url
            assert os.environ["APP_ASYNC"] == db_url.replace("sqlite:", "sqlite+aiosqlite:", 1)
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            raw = sqlite3.connect(os.environ["APP_DB"], uri=True)
            assert raw.execute("SELECT COUNT(*) FROM users").fetchone() == (1,)
            raw.close()

        def test_without_a_scope_sees_the_original():
            assert os.environ["APP_DB"] == "untouched"
            assert "APP_ASYNC" not in os.environ
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    assert os.environ["APP_DB"] == "untouched"


def test_environment_safety_applies_before_conftest_is_imported(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURSO_AUTH_TOKEN", "a-real-secret")
    pytester = project(
        ini="dbscope_unset_env = TURSO_AUTH_TOKEN\ndbscope_set_env =\n    FEATURE_ENABLE_CONNECTION_POOL=false\n"
    )
    pytester.makeconftest(
        """
        import os
        SEEN = (os.environ.get("TURSO_AUTH_TOKEN"), os.environ.get("FEATURE_ENABLE_CONNECTION_POOL"))
        """
    )
    pytester.makepyfile(
        """
        import conftest

        def test_env():
            assert conftest.SEEN == (None, "false")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert os.environ["TURSO_AUTH_TOKEN"] == "a-real-secret"
    assert "FEATURE_ENABLE_CONNECTION_POOL" not in os.environ


def test_reset_modules_and_hooks_run_at_every_scope_boundary(project: MakeProject) -> None:
    pytester = project(ini="dbscope_reset_modules = appdb\ndbscope_reset_hooks = appstate:reset\n")
    pytester.makepyfile(
        appdb="""
        import os
        ENGINE_URL = os.environ.get("DATABASE_URL")
        """,
        appstate="""
        CACHE = {}
        RESETS = []

        def reset():
            CACHE.clear()
            RESETS.append(1)
        """,
        test_resets="""
        import importlib, os, appstate

        def test_first(db):
            import appdb
            assert appdb.ENGINE_URL == os.environ["DATABASE_URL"]
            appstate.CACHE["user"] = "stale"

        def test_second(db, dbscope):
            import appdb  # imported fresh: the module-level singleton sees this test's URL
            assert appdb.ENGINE_URL == os.environ["DATABASE_URL"]
            assert appstate.CACHE == {}
            assert len(appstate.RESETS) == 3  # start and end of test_first, start of this one
            assert dbscope.metrics["modules_cleared"] >= 1
        """,
    )
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=2)


def test_autouse_gives_every_test_a_scope(project: MakeProject) -> None:
    pytester = project(ini="dbscope_autouse = true\n")
    pytester.makepyfile(
        """
        import os

        def test_plain():
            url = os.environ["DATABASE_URL"]
            assert url.startswith("sqlite:///") and "/dbscope_" in url
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["scopes created: 1, destroyed: 1"])


def test_a_plain_test_gets_a_scope_only_where_every_test_needs_one(project: MakeProject) -> None:
    """Under clone a test that takes no dbscope fixture gets no scope (and no fixture of dbscope's);
    under reset, whose database is in the environment, every test gets one."""
    pytester = project()
    pytester.makepyfile(
        """
        def test_plain(request):
            assert "dbscope_scope" not in request.fixturenames
            assert not [name for name in request.fixturenames if "dbscope" in name]  # nothing of dbscope's to set up

        def test_with_db(db):
            assert db.execute("SELECT 1").scalar() == 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["scopes created: 1, destroyed: 1"])

    reset = pytester.runpytest("--dbscope-strategy=reset")
    reset.assert_outcomes(passed=1, failed=1)  # the plain test is given the scope that restores the database
    reset.stdout.fnmatch_lines(["*assert 'dbscope_scope' not in*", "scopes created: 2, destroyed: 2"])


def test_the_scope_is_the_running_tests_however_it_is_asked_for(project: MakeProject) -> None:
    """dbscope_scope learns its test from pytest_runtest_setup, not from ``request``: asked for in the
    test's signature, through another fixture, or with getfixturevalue() during the call, it names the
    running test, and the marker of that test applies."""
    pytester = project()
    pytester.path.joinpath("other.sql").write_text("CREATE TABLE other (x INTEGER);")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def through_a_fixture(dbscope_scope):
            return dbscope_scope

        def test_signature(dbscope_scope, request):
            assert dbscope_scope.test_name == request.node.nodeid

        def test_fixture(through_a_fixture, request):
            assert through_a_fixture.test_name == request.node.nodeid

        @pytest.mark.dbscope(migrations="other.sql")
        def test_during_the_call(request):
            scope = request.getfixturevalue("dbscope_scope")
            assert scope.test_name == request.node.nodeid
            names = [r[0] for r in scope.client().execute("SELECT name FROM sqlite_master WHERE type='table'")]
            assert names == ["other"]
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_the_marker_overrides_migrations_for_one_test(project: MakeProject) -> None:
    pytester = project()
    pytester.path.joinpath("other.sql").write_text("CREATE TABLE other (x INTEGER);")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dbscope(migrations="other.sql")
        def test_other(db):
            assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["other"]

        def test_default(db):
            assert db.execute("SELECT COUNT(*) FROM users").scalar() == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_db_engine_is_a_sqlalchemy_engine_on_the_test_database(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import sqlalchemy as sa

        def test_engine(db, db_engine):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            with db_engine.connect() as conn:
                assert conn.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() == 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*leaked: 0"])


def test_a_connection_kept_in_a_global_is_reported_as_a_leak(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        import os, sqlalchemy as sa

        KEPT = []

        def test_leaky(db):
            engine = sa.create_engine(os.environ["DATABASE_URL"])
            KEPT.append(engine.connect())  # never closed, never disposed

        def test_clean(db):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*leaked: 1", "connection leak in test_a_connection_kept*.py::test_leaky: 1 connection(s) left open"]
    )


def test_a_client_kept_across_tests_fails_with_a_clear_error(project: MakeProject) -> None:
    pytester = project()
    pytester.makepyfile(
        """
        KEPT = []

        def test_keeps_its_client(db):
            KEPT.append(db)

        def test_uses_the_stale_client():
            KEPT[0].execute("SELECT 1")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*ClientClosedError: the client of scope test_* (test '*::test_keeps_its_client') is closed*"]
    )


def test_file_backend_gives_each_test_its_own_file(project: MakeProject, tmp_path: Path) -> None:
    pytester = project(ini=f"dbscope_url = sqlite:///{tmp_path}/dbs\n")
    pytester.makepyfile(
        """
        import os, pytest, sqlite3

        @pytest.mark.parametrize("n", range(3))
        def test_file(db, n):
            path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
            assert os.path.basename(path).startswith("dbscope_")
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            other = sqlite3.connect(path)  # e.g. an app in another process opening the file
            assert other.execute("SELECT COUNT(*) FROM users").fetchone() == (1,)
            other.close()
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)
    left = sorted(p.name for p in (tmp_path / "dbs").iterdir())
    assert len(left) == 1 and left[0].startswith("dbscope_tpl_")  # only the reusable template remains


def test_the_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*dbscope:*", "*--dbscope-url=VALUE*", "*dbscope_migrations (string):*"])


def test_an_engine_disposed_by_a_reset_hook_is_not_a_leak(project: MakeProject) -> None:
    pytester = project(ini="dbscope_reset_hooks = appdb:reset_for_testing\n")
    pytester.makepyfile(
        appdb="""
        import os, sqlalchemy as sa

        ENGINE = None

        def get_engine():
            global ENGINE
            if ENGINE is None:
                ENGINE = sa.create_engine(os.environ["DATABASE_URL"])
            return ENGINE

        def reset_for_testing():
            global ENGINE
            if ENGINE is not None:
                ENGINE.dispose()
            ENGINE = None
        """,
        test_app="""
        import sqlalchemy as sa
        import appdb

        def test_app_uses_its_singleton(db):
            with appdb.get_engine().connect() as conn:
                assert conn.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() == 0
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*leaked: 0"])


def test_files_of_a_killed_run_are_removed_by_the_next_run(project: MakeProject, tmp_path: Path) -> None:
    directory = tmp_path / "dbs"
    pytester = project(ini=f"dbscope_url = sqlite:///{directory}\n")
    pytester.makepyfile(
        test_dies="""
        import os

        def test_killed_mid_test(db):
            db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@example.com')")
            os._exit(9)  # no teardown, no atexit
        """
    )
    assert pytester.runpytest_subprocess("-p", "no:benchmark").ret == 9
    left = sorted(p.name for p in directory.iterdir() if not p.name.startswith("dbscope_tpl_"))
    assert any(name.endswith(".sqlite3") for name in left) and any(name.endswith(".owner") for name in left)

    (pytester.path / "test_dies.py").unlink()
    pytester.makepyfile(test_next="def test_next(db): pass")
    pytester.runpytest_subprocess("-p", "no:benchmark").assert_outcomes(passed=1)
    assert [p.name for p in directory.iterdir() if not p.name.startswith("dbscope_tpl_")] == []
