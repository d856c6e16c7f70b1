"""The errors a new user meets first: each message pinned, from real runs on real databases.

A misspelled setting or option, ``-n`` without pytest-xdist, psycopg's placeholders given to
the client, a migration that fails, an SQL error in a test, a server that cannot be reached.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbscope import DbscopeError, IsolationManager, MigrationError
from dbscope.client import Client
from dbscope.migrations import load_migrations

SETTING_LIST = (
    "dbscope_url, dbscope_migrations, dbscope_seed, dbscope_strategy, dbscope_env_var, dbscope_unset_env, "
    "dbscope_set_env, dbscope_reset_modules, dbscope_reset_hooks, dbscope_app_engines, dbscope_app_sessions, "
    "dbscope_autouse, dbscope_close_timeout, "
    "dbscope_slow_test_s, dbscope_memory_growth_mb, dbscope_allow_remote, dbscope_keep_failed, dbscope_report, "
    "dbscope_html, dbscope_fail_on_leak, dbscope_baseline, dbscope_save_baseline"
)


# -- 1. a misspelled setting stops the run, naming the closest one -----------------------------

CONFIG_FILES = {
    "pytest.ini": ("pytest.ini", "[pytest]\n{line}\n"),
    "pyproject.toml": ("pyproject.toml", "[tool.pytest.ini_options]\n{line}\n"),
    "tox.ini": ("tox.ini", "[pytest]\n{line}\n"),
    "setup.cfg": ("setup.cfg", "[tool:pytest]\n{line}\n"),
}


@pytest.mark.parametrize("kind", CONFIG_FILES)
def test_a_misspelled_setting_in_any_config_file_is_a_usage_error_naming_the_closest_one(
    pytester: pytest.Pytester, kind: str
) -> None:
    name, template = CONFIG_FILES[kind]
    value = '"migrations"' if name.endswith(".toml") else "migrations"
    (pytester.path / name).write_text(template.format(line=f"dbscope_migration = {value}"))
    pytester.makepyfile("def test_never_runs(db): pass")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: dbscope: unknown setting dbscope_migration in config file {name}: did you mean dbscope_migrations?"
    )
    assert "test_never_runs" not in result.stdout.str()


def test_a_misspelled_setting_given_with_o_names_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never_runs(db): pass")

    result = pytester.runpytest("-o", "dbscope_stratgy=reset")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: dbscope: unknown setting dbscope_stratgy given with -o on the command line: "
        "did you mean dbscope_strategy?"
    )


def test_every_bad_name_is_listed_once_with_what_to_write_instead(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".ini",
        pytest="[pytest]\nDBSCOPE_URL = sqlite://\ndbscope_rebuild = true\ndbscope_frobnicate = 1\ntimeout = 5\n",
    )
    pytester.makepyfile("def test_never_runs(db): pass")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[:3] == [
        "ERROR: dbscope: unknown setting DBSCOPE_URL in config file pytest.ini: did you mean dbscope_url?",
        "dbscope_rebuild in config file pytest.ini cannot be set in a config file: give --dbscope-rebuild "
        "on the command line, or set the DBSCOPE_REBUILD environment variable",
        f"unknown setting dbscope_frobnicate in config file pytest.ini; the settings are {SETTING_LIST} "
        "(pytest --help describes each)",
    ]
    assert "setting timeout" not in result.stderr.str()  # another plugin's name is pytest's business


def test_a_misspelled_dbscope_option_names_the_closest_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never_runs(db): pass")

    result = pytester.runpytest("--dbscope-migration", "migrations")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: dbscope: unknown option --dbscope-migration on the command line: did you mean --dbscope-migrations?"
    )


def test_valid_names_everywhere_run_as_before(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_strategy = clone\ndbscope_close_timeout = 5\n")
    pytester.makepyfile("def test_runs(db): assert db.execute('SELECT 1').scalar() == 1")

    pytester.runpytest("-o", "dbscope_slow_test_s=9", "--dbscope-keep-failed").assert_outcomes(passed=1)


# -- 2. -n without pytest-xdist names the package ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "option", "run"),
    [
        (("-n", "2"), "-n", "runpytest_subprocess"),  # a process where xdist was never imported
        (("-n2",), "-n", "runpytest"),
        (("--numprocesses=2",), "--numprocesses", "runpytest"),
    ],
)
def test_n_with_xdist_disabled_says_which_plugin_it_needs(
    pytester: pytest.Pytester, args: tuple[str, ...], option: str, run: str
) -> None:
    pytester.makepyfile("def test_never_runs(db): pass")

    result = getattr(pytester, run)("-p", "no:xdist", *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: dbscope: {option} needs pytest-xdist, which -p no:xdist disabled: leave out one of the two"
    )


def site_without_xdist(tmp_path: Path) -> Path:
    """A copy (of links) of the site-packages pytest is installed in, without pytest-xdist."""
    site_packages = Path(pytest.__file__).resolve().parent.parent
    copy = tmp_path / "site-packages-without-xdist"
    copy.mkdir()
    for entry in site_packages.iterdir():
        if entry.name != "xdist" and not entry.name.startswith("pytest_xdist-"):
            (copy / entry.name).symlink_to(entry)
    return copy


def test_n_without_xdist_installed_names_the_package_to_install(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile("def test_never_runs(db): pass")
    # a Python that sees the same packages but pytest-xdist (-S: not the venv's site-packages)
    run = "import site, sys; site.addsitedir(sys.argv[1]); import pytest; sys.exit(pytest.main(sys.argv[2:]))"

    result = pytester.run(sys.executable, "-S", "-c", run, site_without_xdist(tmp_path), "-n", "2")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: dbscope: -n needs pytest-xdist, which is not installed: pip install pytest-xdist "
        "(or leave out -n to run the tests in one process)"
    )


def test_n_with_plugin_autoloading_off_says_to_load_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_never_runs(db): pass")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    result = pytester.runpytest_subprocess("-p", "dbscope.plugin", "-n", "2")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: dbscope: -n needs pytest-xdist, which is installed but not loaded (plugin autoloading is off): "
        "add -p xdist"
    )


# -- 3. psycopg's placeholders: a dbscope error that explains the client's style ---------------

POSITIONAL = (
    "the statement uses %s, psycopg's placeholder style; dbscope's client takes SQLite's on every backend "
    "(it translates them for PostgreSQL): write ? in place of %s, with a sequence of arguments, or :name with a mapping"
)
NAMED = (
    "the statement uses %(id)s, psycopg's placeholder style; dbscope's client takes SQLite's on every backend "
    "(it translates them for PostgreSQL): write :id in place of %(id)s, with a mapping of arguments, or ? with a "
    "sequence"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A client on a real, fresh database of each backend (PostgreSQL: skipped when no server answers)."""
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with IsolationManager(url) as manager, manager.scope(request.node.name) as scope:
        yield scope.client()


@pytest.mark.parametrize(
    ("sql", "args", "message"),
    [
        ("SELECT %s", [1], POSITIONAL),
        ("SELECT %(id)s", {"id": 1}, NAMED),
        ("SELECT 1 WHERE 2 = %s AND '%s' <> %s", [2, 3], POSITIONAL),
    ],
    ids=["positional", "named", "after-a-string"],
)
def test_psycopg_placeholders_raise_an_error_that_explains_the_clients_style(
    client: Client, sql: str, args: object, message: str
) -> None:
    with pytest.raises(DbscopeError) as caught:
        client.execute(sql, args)  # type: ignore[arg-type]

    assert str(caught.value) == message
    assert caught.value.__cause__ is not None  # the driver's own error, for the curious


def test_percent_signs_that_are_not_placeholders_still_work(client: Client) -> None:
    assert client.execute("SELECT 10 % 3 + ?", [1]).scalar() == 2
    assert client.execute("SELECT '%s' || ?", ["x"]).scalar() == "%sx"
    assert client.execute("SELECT :a || '%(a)s'", {"a": "x"}).scalar() == "x%(a)s"


# -- 4. a failing migration: file, line of the error, the statement as written, the driver -----

TRAILING_COMMA = "-- users\nCREATE TABLE users (\n    id INTEGER PRIMARY KEY,\n    name VARCHAR(100),\n);\n"


def migrate(tmp_path: Path, sql: str, conn: object) -> MigrationError:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_users.sql").write_text(sql)
    with pytest.raises(MigrationError) as caught:
        load_migrations("migrations", base_dir=tmp_path).apply(conn)
    return caught.value


def test_a_sqlite_syntax_error_points_at_the_token_sqlite_stopped_at(tmp_path: Path) -> None:
    with sqlite3.connect(":memory:") as conn:
        error = migrate(tmp_path, TRAILING_COMMA, conn)

    assert str(error) == (
        'migration failed in migrations/0001_users.sql, line 5 (statement 1): near ")": syntax error\n'
        "    2 | CREATE TABLE users (\n"
        "    3 |     id INTEGER PRIMARY KEY,\n"
        "    4 |     name VARCHAR(100),\n"
        "    5 | )\n"
        "      | ^\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )  # the ")" of VARCHAR(100) parsed fine: the error is the one on line 5
    assert (error.line, error.statement_index) == (5, 1)
    assert error.statement == "CREATE TABLE users (\n    id INTEGER PRIMARY KEY,\n    name VARCHAR(100),\n)"


def test_a_sqlite_error_naming_something_points_at_it(tmp_path: Path) -> None:
    with sqlite3.connect(":memory:") as conn:
        error = migrate(tmp_path, "CREATE TABLE a (x INT);\nINSERT INTO a\n  SELECT x FROM nowhere;\n", conn)

    assert str(error) == (
        "migration failed in migrations/0001_users.sql, line 3 (statement 2): no such table: nowhere\n"
        "    2 | INSERT INTO a\n"
        "    3 |   SELECT x FROM nowhere\n"
        "      |                 ^\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )


def test_an_error_without_a_place_shows_the_statements_lines(tmp_path: Path) -> None:
    sql = "CREATE TABLE u (n TEXT UNIQUE);\nINSERT INTO u VALUES ('a');\nINSERT INTO u\n  VALUES ('a');\n"
    with sqlite3.connect(":memory:") as conn:
        error = migrate(tmp_path, sql, conn)

    assert str(error) == (
        "migration failed in migrations/0001_users.sql, statement 3 (lines 3-4): UNIQUE constraint failed: u.n\n"
        "    3 | INSERT INTO u\n"
        "    4 |   VALUES ('a')\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )


def test_a_long_statement_without_a_place_shows_its_first_lines(tmp_path: Path) -> None:
    rows = ",\n".join(f"  ('r{n}')" for n in range(1, 15))
    sql = f"CREATE TABLE u (n TEXT UNIQUE);\nINSERT INTO u VALUES\n{rows},\n  ('r1');\n"
    with sqlite3.connect(":memory:") as conn:
        error = migrate(tmp_path, sql, conn)

    assert str(error) == (
        "migration failed in migrations/0001_users.sql, statement 2 (lines 2-17): UNIQUE constraint failed: u.n\n"
        "      2 | INSERT INTO u VALUES\n"
        + "".join(f"    {n + 2:>3} |   ('r{n}'),\n" for n in range(1, 9))
        + "    ... | (7 more lines)\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )


def test_a_postgresql_error_uses_the_servers_position_and_keeps_its_hint(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    sql = "CREATE TABLE t (x int);\nSELECT 1,\n  no_such_function(2);\n"
    with psycopg.connect(pg_url) as conn:
        error = migrate(tmp_path, sql, conn)
        conn.rollback()

    assert str(error) == (
        "migration failed in migrations/0001_users.sql, line 3 (statement 2): "
        "function no_such_function(integer) does not exist\n"
        "    HINT:  No function matches the given name and argument types. You might need to add explicit type casts.\n"
        "    2 | SELECT 1,\n"
        "    3 |   no_such_function(2)\n"
        "      |   ^\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )
    assert isinstance(error.__cause__, psycopg.errors.UndefinedFunction)


def test_a_postgresql_syntax_error_in_a_long_statement_shows_the_lines_around_it(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    columns = "".join(f"    c{n} int,\n" for n in range(1, 21))
    sql = f"CREATE TABLE wide (\n{columns}    id INTEGER PRIMARY KEY AUTOINCREMENT\n);\n"
    with psycopg.connect(pg_url) as conn:
        error = migrate(tmp_path, sql, conn)
        conn.rollback()

    assert str(error) == (
        "migration failed in migrations/0001_users.sql, line 22 (statement 1): "
        'syntax error at or near "AUTOINCREMENT"\n'
        "    ... |\n"
        "     18 |     c17 int,\n"
        "     19 |     c18 int,\n"
        "     20 |     c19 int,\n"
        "     21 |     c20 int,\n"
        "     22 |     id INTEGER PRIMARY KEY AUTOINCREMENT\n"
        "        |                            ^\n"
        "     23 | )\n"
        "Fix this statement (or the ones before it) and run again; the template was not saved."
    )


def test_the_plugin_shows_the_failing_migration_as_written(pytester: pytest.Pytester) -> None:
    pytester.mkdir("migrations")
    (pytester.path / "migrations" / "0001_users.sql").write_text(TRAILING_COMMA)
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = migrations\n")
    pytester.makepyfile("def test_never_runs(db): pass")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: dbscope: MigrationError: migration failed in migrations/0001_users.sql, line 5 (statement 1): "
            'near ")": syntax error',
            "    2 | CREATE TABLE users (",
            "    3 |     id INTEGER PRIMARY KEY,",
            "    4 |     name VARCHAR(100),",
            "    5 | )",
            "      | ^",
            "Fix this statement (or the ones before it) and run again; the template was not saved.",
            "(dbscope_migrations = 'migrations', from dbscope_migrations in config file pytest.ini)",
        ],
        consecutive=True,
    )


# -- 5. an SQL error in a test shows the test's own call last ----------------------------------

SQL_ERRORS = """
def test_execute(db):
    db.execute("SELECT * FROM nowhere")

def test_batch(db):
    db.batch(["SELECT 1", "SELECT * FROM nowhere"])

def test_transaction(db):
    with db.transaction() as tx:
        tx.execute("SELECT * FROM nowhere")
"""


def test_an_sql_error_on_sqlite_shows_the_tests_call_and_no_dbscope_frame(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SQL_ERRORS)

    result = pytester.runpytest("-p", "no:randomly")

    result.assert_outcomes(failed=3)
    for call in ('db.execute("SELECT * FROM nowhere")', 'db.batch(["SELECT 1", "SELECT * FROM nowhere"])'):
        result.stdout.fnmatch_lines([f">       {call}", "E       sqlite3.OperationalError: no such table: nowhere"])
    result.stdout.fnmatch_lines(
        [
            '>           tx.execute("SELECT * FROM nowhere")',
            "E           sqlite3.OperationalError: no such table: nowhere",
        ]
    )
    assert "dbscope/client.py" not in result.stdout.str()


def test_an_sql_error_on_postgresql_shows_the_tests_call_and_the_servers_message(
    pytester: pytest.Pytester, pg_url: str
) -> None:
    pytester.makepyfile(SQL_ERRORS)

    result = pytester.runpytest("-p", "no:randomly", "--dbscope-url", pg_url, "-k", "test_execute")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '>       db.execute("SELECT * FROM nowhere")',
            'E       psycopg.errors.UndefinedTable: relation "nowhere" does not exist',
            "E       LINE 1: SELECT * FROM nowhere",
        ],
        consecutive=True,
    )
    output = result.stdout.str()
    assert "dbscope/client.py" not in output and "psycopg/cursor.py" not in output


# -- 6. a server that cannot be reached: one well-formed sentence per cause --------------------


def test_a_refused_connection_is_told_in_sentences_then_what_to_do() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL backend needs psycopg: pip install 'dbscope[postgres]'")
    from dbscope.backends.pg_connect import START_ADVICE, connect, server_address
    from dbscope.errors import BackendUnavailableError
    from dbscope.urls import parse_backend_url

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:pw@127.0.0.1:{port}/postgres"

    with pytest.raises(BackendUnavailableError) as caught:
        connect(server_address(parse_backend_url(url)), "postgres")

    assert str(caught.value) == (
        f"cannot reach the PostgreSQL server at 127.0.0.1:{port} "
        f"(postgresql://postgres:***@127.0.0.1:{port}/postgres): "
        f'Connection to server at "127.0.0.1", port {port} failed: Connection refused. '
        f"Is the server running on that host and accepting TCP/IP connections? {START_ADVICE}."
    )


def test_a_missing_role_is_told_in_a_sentence_then_what_to_do(pg_url: str) -> None:
    from dbscope.backends.pg_connect import connect, server_address
    from dbscope.errors import BackendUnavailableError
    from dbscope.urls import parse_backend_url

    address = server_address(parse_backend_url(pg_url))
    nobody = server_address(parse_backend_url(pg_url.replace(f"{address.user}@", "dbscope_no_such_role@", 1)))

    with pytest.raises(BackendUnavailableError) as caught:
        connect(nobody, "postgres")

    assert str(caught.value) == (
        f"the PostgreSQL server at {nobody.where} has no role 'dbscope_no_such_role' ({nobody.masked_url}): "
        f'Connection to server at "{nobody.host}", port {nobody.port} failed: '
        'role "dbscope_no_such_role" does not exist. '
        'Create it (as a superuser: CREATE ROLE "dbscope_no_such_role" LOGIN CREATEDB;) or put an existing role '
        "in dbscope_url."
    )


def test_libpqs_lines_become_sentences_one_per_cause() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL backend needs psycopg: pip install 'dbscope[postgres]'")
    from dbscope.backends.pg_connect import sentences

    two_addresses = (
        'connection failed: connection to server at "::1", port 5499 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?\n"
        'connection to server at "127.0.0.1", port 5499 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?"
    )
    assert sentences(two_addresses) == (
        'Connection to server at "::1", port 5499 failed: Connection refused. '
        "Is the server running on that host and accepting TCP/IP connections? "
        'Connection to server at "127.0.0.1", port 5499 failed: Connection refused.'
    )
    assert sentences("connection failed: FATAL:  sorry, too many clients already") == (
        "Sorry, too many clients already."
    )
