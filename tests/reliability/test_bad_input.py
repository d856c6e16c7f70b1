"""Bad input: every mistake a user can make in a setting, a migration or a test name.

Each one must give a clear dbscope error (library) or a clean session error (plugin:
exit code, one message on the terminal, no traceback) naming the setting, the value and
where it came from, and lose nothing: the user's files and environment stay as they
were, and no ``dbscope_*`` file, database or connection is left behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from reliability.waiting import wait_until

from dbscope import ConfigError, DbscopeError, IsolationManager, MigrationError
from dbscope.cli import main as cli_main
from dbscope.config import build_config

if TYPE_CHECKING:
    from reliability.figures import Figures

psycopg = pytest.importorskip("psycopg")

RUN_ARGS = ("-p", "no:benchmark", "-p", "no:cacheprovider")
USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"


# -- helpers -----------------------------------------------------------------------------


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (caches aside) with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and "__pycache__" not in p.parts
        and ".pytest_cache" not in p.parts
        and p.relative_to(root).as_posix() not in ("stdout", "stderr")  # pytester's capture of the run
    }


def dbscope_leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("dbscope_*"))


def pg_rows(pg_url: str, sql: str, args: Any = ()) -> list[Any]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return list(conn.execute(sql, args).fetchall())


def pg_leftovers(pg_url: str, run_id: str) -> tuple[list[str], list[str]]:
    """This run's databases still on the server, and connections of this run still open."""
    databases = pg_rows(pg_url, "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"dbscope\\_{run_id}\\_%"])
    sessions = pg_rows(
        pg_url,
        "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE %s",
        [f"dbscope {run_id}%"],
    )
    return [d for (d,) in databases], [f"{pid} {name}" for pid, name in sessions]


def drop_my_template(pg_url: str, migrations: Path) -> None:
    """Drop the template a test built from its own (uniquely commented) migrations."""
    from dbscope.backends import pg_owner
    from dbscope.migrations import MigrationSet, combined_fingerprint, load_migrations

    name = f"dbscope_tpl_{combined_fingerprint(load_migrations(migrations), MigrationSet())}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        pg_owner.drop_checked(conn, name, allow_template=True)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory that is the current directory, with a migrations/ dir."""
    (tmp_path / "migrations").mkdir()
    # a comment unique to this test: a PostgreSQL template of its own, dropped by the test
    (tmp_path / "migrations" / "0001_users.sql").write_text(f"-- {secrets.token_hex(8)}\n{USERS_SQL}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- settings: library -------------------------------------------------------------------

LIBRARY_CASES = [
    # IsolationManager keyword, value, the reason in the message
    ("url", "oracle://root:hunter2@localhost/app", "unknown URL scheme 'oracle'"),
    ("url", "postgresql://u:hunter2@localhost:99999/app", "Port out of range"),
    ("url", "postgresql://u:hunter2@localhost:port/app", "malformed URL"),
    ("url", "localhost/app", "is not a URL"),
    ("close_timeout", -1, "must be greater than 0"),
    ("close_timeout", 0, "must be greater than 0"),
    ("close_timeout", float("nan"), "must be a number"),
    ("close_timeout", float("inf"), "must be finite"),
    ("close_timeout", "soon", "must be a number"),
    ("slow_test_s", "-inf", "must be greater than 0"),
    ("memory_growth_mb", "1e999", "must be finite"),
    ("strategy", "fork", "must be one of clone, reset, rollback, worker"),
    ("env_var", "DBSCOPE_URL", "a variable dbscope reads its own settings from"),
    ("set_env", "DBSCOPE_MIGRATIONS=other", "a variable dbscope reads its own settings from"),
    ("unset_env", "DBSCOPE_DEBUG", "a variable dbscope reads its own settings from"),
    ("set_env", "DATABASE_URL=postgresql://u:hunter2@prod/db", "both name DATABASE_URL"),
]


@pytest.mark.parametrize(("name", "value", "reason"), LIBRARY_CASES, ids=[f"{c[0]}={c[1]}" for c in LIBRARY_CASES])
def test_a_bad_setting_of_the_library_names_setting_value_and_source(
    workdir: Path, name: str, value: Any, reason: str
) -> None:
    environ, files = dict(os.environ), tree_digest(workdir)
    with pytest.raises(ConfigError) as caught:
        IsolationManager(migrations="migrations", **{name: value})
    message = str(caught.value)
    assert f"dbscope_{name} = " in message, message
    assert "(from dbscope_" in message and "in IsolationManager arguments)" in message, message
    shown = str(value).replace("hunter2", "***")
    assert repr(shown)[1:-1] in message or shown in message, message
    assert reason in message, message
    assert "hunter2" not in message
    assert dict(os.environ) == environ and tree_digest(workdir) == files and not dbscope_leftovers(workdir)


def test_clashing_variable_settings_name_both_settings_and_their_sources(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        IsolationManager(set_env="FLAG=on", unset_env="FLAG, OTHER")
    assert str(caught.value).startswith(
        "dbscope_set_env = 'FLAG=on' (from dbscope_set_env in IsolationManager arguments) and "
        "dbscope_unset_env = 'FLAG, OTHER' (from dbscope_unset_env in IsolationManager arguments) "
        "both name FLAG: it cannot be both set and deleted"
    )
    # the default dbscope_env_var is named as the default
    with pytest.raises(
        ConfigError,
        match=r"^dbscope_env_var = 'DATABASE_URL' \(the default\) and dbscope_set_env = "
        r"'DATABASE_URL=sqlite://' \(from the DBSCOPE_SET_ENV environment variable\)",
    ):
        build_config(env={"DBSCOPE_SET_ENV": "DATABASE_URL=sqlite://"})
    # deleting the shell's value for the session is allowed: the variable then exists only inside scopes
    assert build_config(ini={"unset_env": "DATABASE_URL"}).unset_env == ("DATABASE_URL",)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("nan", "is not a finite number of seconds"),
        ("inf", "is not a finite number of seconds"),
        ("-5", "is negative"),
        ("soon", "is not a number of seconds"),
    ],
)
def test_dbscope_gc_refuses_a_bad_older_than(
    workdir: Path, value: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["gc", "--url", "sqlite:///dbs", "--older-than", value]) == 2
    err = capsys.readouterr().err
    assert "--older-than" in err and f"{value!r} {reason}" in err and "Traceback" not in err
    assert not (workdir / "dbs").exists()


# -- settings: plugin --------------------------------------------------------------------

PLUGIN_CASES = [
    # how the value is given, setting, value, origin in the message, reason
    ("cli", "url", "oracle://x", "--dbscope-url on the command line", "unknown URL scheme 'oracle'"),
    ("env", "url", "postgresql://u:hunter2@h:99999/db", "the DBSCOPE_URL environment variable", "Port out of range"),
    ("ini", "close_timeout", "nan", "dbscope_close_timeout in config file pytest.ini", "must be a number"),
    ("ini", "env_var", "DBSCOPE_URL", "dbscope_env_var in config file pytest.ini", "reads its own settings from"),
]


@pytest.mark.parametrize(
    ("how", "name", "value", "origin", "reason"), PLUGIN_CASES, ids=[f"{c[0]}-{c[1]}" for c in PLUGIN_CASES]
)
def test_a_bad_setting_under_pytest_is_a_usage_error_naming_setting_value_and_source(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    name: str,
    value: str,
    origin: str,
    reason: str,
) -> None:
    ini = f"dbscope_{name} = {value}\n" if how == "ini" else ""
    pytester.makefile(".ini", pytest=f"[pytest]\n{ini}")
    pytester.makepyfile(test_one="def test_one(db): pass\n")
    args: list[str] = [f"--dbscope-{name.replace('_', '-')}={value}"] if how == "cli" else []
    if how == "env":
        monkeypatch.setenv(f"DBSCOPE_{name.upper()}", value)
    files = tree_digest(pytester.path)
    result = pytester.runpytest_subprocess(*RUN_ARGS, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = "\n".join(result.errlines)
    shown = value.replace("hunter2", "***")
    assert f"dbscope_{name} = {shown!r} (from {origin}) is not valid" in err, err
    assert reason in err and "hunter2" not in err + "\n".join(result.outlines)
    assert "Traceback" not in err and len([line for line in result.errlines if line.strip()]) <= 2, err
    assert tree_digest(pytester.path) == files and not dbscope_leftovers(pytester.path)


MIGRATION_CASES = [
    # files, how the setting is given, expected lines
    (
        {},
        ("ini", "dbscope_migrations", "no_such_dir"),
        [
            "*ConfigError: dbscope_migrations: 'no_such_dir' does not exist*"
            "(dbscope_migrations = 'no_such_dir', from dbscope_migrations in config file pytest.ini)*"
        ],
    ),
    (
        {"mig/0001_empty.sql": b"-- nothing to see\n/* here either */\n"},
        ("env", "DBSCOPE_MIGRATIONS", "mig"),
        [
            "*MigrationError: migration mig/0001_empty.sql contains no SQL statements*"
            "(dbscope_migrations = 'mig', from the DBSCOPE_MIGRATIONS environment variable)*"
        ],
    ),
    (
        {"mig/0001_latin1.sql": "CREATE TABLE cafés (name TEXT);\n".encode("latin-1")},
        ("cli", "--dbscope-migrations", "mig"),
        [
            "*MigrationError: migration mig/0001_latin1.sql is not valid UTF-8: byte b'\\xe9' at offset 16 (line 1)*"
            "(dbscope_migrations = 'mig', from --dbscope-migrations on the command line)*"
        ],
    ),
    (
        {
            "mig/0001_users.sql": USERS_SQL.encode(),
            "seed.sql": b"INSERT INTO users (name) VALUES ('ana');\nINSERT INTO users (name) VALUES ('ana');\n",
        },
        ("ini", "dbscope_seed", "seed.sql"),
        [
            "*MigrationError: migration failed in seed.sql, line 2 (statement 2): UNIQUE constraint failed: users.name",
            "*INSERT INTO users (name) VALUES ('ana')",
            "*(dbscope_seed = 'seed.sql', from dbscope_seed in config file pytest.ini)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("files", "given", "expected"), MIGRATION_CASES, ids=["missing-path", "empty", "not-utf8", "seed-violates"]
)
def test_a_bad_migration_fails_the_session_once_with_a_clean_message(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, bytes],
    given: tuple[str, str, str],
    expected: list[str],
) -> None:
    for name, content in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    how, key, value = given
    ini = f"{key} = {value}\n" if how == "ini" else ""
    if "mig/0001_users.sql" in files and how == "ini":
        ini += "dbscope_migrations = mig\n"
    pytester.makefile(".ini", pytest=f"[pytest]\ndbscope_url = sqlite:///dbs\n{ini}")
    pytester.makepyfile(
        test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(5))
        def test_needs_db(db, n):
            pass
        """
    )
    if how == "env":
        monkeypatch.setenv(key, value)
    before = tree_digest(pytester.path)
    result = pytester.runpytest_subprocess(*RUN_ARGS, *([f"{key}={value}"] if how == "cli" else []))
    # the session stops once, before any test module is imported, with dbscope's own message
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.errlines[0].startswith(("ERROR: dbscope: MigrationError: ", "ERROR: dbscope: ConfigError: "))
    result.stderr.fnmatch_lines(expected)
    out = "\n".join(result.outlines + result.errlines)
    assert "test_needs_db" not in out
    assert "Traceback" not in out and "src/dbscope/" not in out and "raise " not in out, out
    after = tree_digest(pytester.path)
    assert {k: v for k, v in after.items() if not k.startswith("dbs/")} == before
    assert [p.name for p in (pytester.path / "dbs").glob("dbscope_*")] == []  # owner file and builds removed


def test_a_bad_marker_option_fails_only_its_test_and_names_the_marker(pytester: pytest.Pytester) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "0001_users.sql").write_text(USERS_SQL)
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = migrations\n")
    pytester.makepyfile(
        test_marker="""
        import pytest

        @pytest.mark.dbscope(close_timeout="-1")
        def test_bad_timeout(db):
            pass

        @pytest.mark.dbscope(seed="no/such/seed.sql")
        def test_bad_seed(db):
            pass

        def test_fine(db):
            db.execute("INSERT INTO users (name) VALUES ('ana')")
        """
    )
    result = pytester.runpytest_subprocess(*RUN_ARGS)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ConfigError: dbscope_close_timeout = '-1' (from dbscope_close_timeout in "
            "@pytest.mark.dbscope on test_marker.py::test_bad_timeout) is not valid: must be greater than 0*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ConfigError: dbscope_seed: 'no/such/seed.sql' does not exist*(dbscope_seed = 'no/such/seed.sql', "
            "from dbscope_seed in @pytest.mark.dbscope on test_marker.py::test_bad_seed)*",
        ]
    )
    assert "Traceback" not in "\n".join(result.outlines)


# -- SQLite passes, PostgreSQL does not ---------------------------------------------------------


def test_a_migration_valid_on_sqlite_but_not_postgresql_leaves_nothing_on_the_server(
    workdir: Path, pg_url: str, figures: Figures
) -> None:
    sqlite_only = f"-- {secrets.token_hex(8)}\nCREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);\n"
    (workdir / "migrations" / "0002_notes.sql").write_text(sqlite_only)
    with IsolationManager("sqlite://", migrations="migrations") as manager, manager.scope("on sqlite") as scope:
        assert scope.client().execute("INSERT INTO notes (body) VALUES ('x')").last_insert_rowid == 1

    manager = IsolationManager(pg_url, migrations="migrations")
    started = time.perf_counter()
    try:
        with pytest.raises(MigrationError) as caught, manager.scope("on postgresql"):
            pass
        elapsed = time.perf_counter() - started
    finally:
        manager.close()
    message = str(caught.value)
    assert message.startswith("migration failed in migrations/0002_notes.sql, line 2 (statement 1): syntax error")
    assert "AUTOINCREMENT" in message and caught.value.statement_index == 1 and caught.value.line == 2
    assert message.endswith(
        "(dbscope_migrations = 'migrations', from dbscope_migrations in IsolationManager arguments)"
    )
    assert isinstance(caught.value.__cause__, psycopg.errors.SyntaxError)
    # no template, no half-built template, no clone, no session of this run
    owned = pg_rows(
        pg_url,
        "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE %s",
        [f'%"run":"{manager.run_id}"%'],
    )
    assert owned == []

    def leftovers() -> tuple[list[str], list[str]]:
        return pg_leftovers(pg_url, manager.run_id)

    wait_until(lambda: leftovers() == ([], []), what=lambda: str(leftovers()))
    assert manager.active_scopes == {}
    figures.record(pg_migration_error_s=round(elapsed, 2))


# -- test names ------------------------------------------------------------------------------

NASTY_NAMES = [
    'tests/test_a.py::test_quote["it\'s"]',
    "tests/test a.py::test with spaces and ; semicolons",
    "tests/test_ü.py::test_ünïcødé[日本語-😀]",
    "tests/test_long.py::test_" + "x" * 300,
]


@pytest.mark.parametrize("backend", ["sqlite-memory", "sqlite-file", "postgresql"])
def test_nasty_test_names_never_reach_database_or_file_names(
    backend: str, workdir: Path, request: pytest.FixtureRequest, figures: Figures
) -> None:
    url = {"sqlite-memory": "sqlite://", "sqlite-file": "sqlite:///dbs"}.get(backend)
    if url is None:
        url = request.getfixturevalue("pg_url")
    names: list[str] = []
    with IsolationManager(url, migrations="migrations") as manager:
        for test_name in NASTY_NAMES:
            with manager.scope(test_name) as scope:
                name = scope.database.name
                names.append(name)
                assert re.fullmatch(r"dbscope_[a-z0-9_]+", name), name
                assert len(name.encode()) <= 63
                db = scope.client()
                db.execute("INSERT INTO users (id, name) VALUES (1, ?)", [test_name])
                assert db.execute("SELECT name FROM users").scalar() == test_name  # stored as data, intact
                if backend == "sqlite-file":  # the scope's file (and the pool's ready ones), all in dbs/
                    assert (workdir / "dbs" / f"{name}.sqlite3").is_file()
                    assert all(
                        re.fullmatch(r"dbscope_[a-z0-9_]+\.(sqlite3(-wal|-shm)?|owner)", p.name)  # WAL: -wal, -shm
                        for p in (workdir / "dbs").iterdir()
                    )
                if backend == "postgresql":
                    assert pg_rows(url, "SELECT 1 FROM pg_database WHERE datname = %s", [name]) == [(1,)]
        run_id = manager.run_id
    assert len(set(names)) == len(NASTY_NAMES)
    if backend == "sqlite-file":  # only the template, kept for later runs by design
        assert [p.name for p in (workdir / "dbs").iterdir()] == [
            next((workdir / "dbs").glob("dbscope_tpl_*.sqlite3")).name
        ]
    if backend == "postgresql":
        try:
            wait_until(lambda: pg_leftovers(url, run_id) == ([], []), what=lambda: str(pg_leftovers(url, run_id)))
        finally:
            drop_my_template(url, workdir / "migrations")
    figures.record(**{f"longest_db_name_bytes_{backend.replace('-', '_')}": max(len(n.encode()) for n in names)})


# -- DATABASE_URL of the user's shell ---------------------------------------------------------------

SHELL_URL = "postgresql://deploy:hunter2@prod-db.internal:5432/live?sslmode=require&app=ünï"


@pytest.mark.parametrize("unset", [False, True], ids=["overridden-per-test", "unset-for-the-session"])
def test_the_shells_database_url_is_never_used_and_is_restored_exactly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, unset: bool
) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "0001_users.sql").write_text(USERS_SQL)
    extra = "dbscope_unset_env = DATABASE_URL\n" if unset else ""
    pytester.makefile(".ini", pytest=f"[pytest]\ndbscope_migrations = migrations\n{extra}")
    monkeypatch.setenv("DATABASE_URL", SHELL_URL)
    outside = None if unset else SHELL_URL
    pytester.makeconftest(
        f"""
        import os, pytest

        SEEN = {{}}

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            with open("env_after_session.txt", "w", encoding="utf-8") as f:
                f.write(repr(os.environ.get("DATABASE_URL")))

        @pytest.fixture(autouse=True)
        def check_outside():
            assert os.environ.get("DATABASE_URL") == {outside!r}
            yield
            assert os.environ.get("DATABASE_URL") == {outside!r}
        """
    )
    pytester.makepyfile(
        test_env=f"""
        import os

        def test_with_db(db, db_url):
            assert os.environ["DATABASE_URL"] == db_url and db_url.startswith("sqlite:///") and "/dbscope_" in db_url
            db.execute("INSERT INTO users (name) VALUES ('ana')")

        def test_without_db():
            assert os.environ.get("DATABASE_URL") == {outside!r}

        def test_with_db_again(db):
            assert db.execute("SELECT count(*) FROM users").scalar() == 0
        """
    )
    result = pytester.runpytest_subprocess(*RUN_ARGS)
    result.assert_outcomes(passed=3)
    assert (pytester.path / "env_after_session.txt").read_text(encoding="utf-8") == repr(SHELL_URL)
    assert "prod-db.internal" not in "\n".join(result.outlines + result.errlines)


def test_scope_env_vars_are_restored_exactly_including_empty_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.delenv("APP_DSN", raising=False)
    with IsolationManager(env_var="DATABASE_URL, APP_DSN:dsn") as manager:
        with manager.scope("one") as scope:
            assert os.environ["DATABASE_URL"] == scope.url() and os.environ["APP_DSN"] == scope.url("dsn")
            with pytest.raises(DbscopeError):
                with manager.scope("nested", strategy="bogus"):
                    pass
            assert os.environ["DATABASE_URL"] == scope.url()
        assert os.environ["DATABASE_URL"] == "" and "APP_DSN" not in os.environ
        assert manager.active_scopes == {} and manager.current_test_id is None
