"""Variables that take one part of the URL, and test ids that hold the URL.

Real apps build their database URL at import time from parts (POSTGRES_SERVER,
POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, or the path of a SQLite
file): ``dbscope_env_var = NAME:host, ...`` gives each part of the worker's database, and
a conftest that builds its URL from them reaches that database, isolated from test to
test, serially and under ``-n 2``; the password never shows in dbscope's output.

A suite parametrized by its database URL under ``reset`` or ``rollback`` puts the URL in
its test ids, and xdist needs every worker to collect the same ids; each worker's database
has a URL of its own, so a stable label in ``ids=`` is what keeps them equal. Two
databases never get one name, also when a worker keeps two of a strategy (other migrations).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from dbscope.backends.sqlite import SQLiteBackend, SQLiteFileDatabase
from dbscope.errors import ConfigError
from dbscope.migrations import MigrationSet

from .conftest import Cell, MakeCellProject, url_of

MODES = {"serial": (), "xdist": ("-n", "2")}
SERVER_PARTS = (
    "POSTGRES_SERVER:host, POSTGRES_PORT:port, POSTGRES_USER:user, POSTGRES_PASSWORD:password, POSTGRES_DB:database"
)
MARIADB_PARTS = "MYSQL_HOST:host, MYSQL_PORT:port, MYSQL_USER:user, MYSQL_PASSWORD:password, MYSQL_DATABASE:database"
#: a password the test server is given in its URL when it lets any password in (trust)
SECRET = "s3cret-part-pw"


# --- each database's parts ----------------------------------------------------------------


@pytest.fixture
def memory_backend() -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend()
    yield backend
    backend.close()


@pytest.fixture
def file_backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(directory=str(tmp_path / "dbs"), in_memory=False)
    yield backend
    backend.close()


NO_SQL = MigrationSet()


def test_a_sqlite_file_gives_its_path_and_has_no_server_part(file_backend: SQLiteBackend) -> None:
    database = file_backend.create(file_backend.template(NO_SQL, NO_SQL), label="gw0_reset")
    assert isinstance(database, SQLiteFileDatabase)
    try:
        assert database.url("path") == str(database.path) == database.url("dsn")
        assert database.url() == f"sqlite:///{database.path}"
        for part in ("host", "port", "user", "password"):
            with pytest.raises(ConfigError) as info:
                database.url(part)
            assert str(info.value) == (
                f"{database.name} is a database of SQLite files, which has no {part}; "
                "use NAME:path, NAME:sqlalchemy or NAME:dsn"
            )
        with pytest.raises(ConfigError, match=re.escape("which has no database name; use NAME:path, NAME:")):
            database.url("database")
    finally:
        database.drop()


def test_sqlite_in_memory_has_no_part(memory_backend: SQLiteBackend) -> None:
    database = memory_backend.create(memory_backend.template(NO_SQL, NO_SQL), label="gw0_7")
    try:
        with pytest.raises(ConfigError) as info:
            database.url("path")
        assert str(info.value) == (
            f"{database.name} is a database of SQLite in memory, which has no file path; "
            "use NAME:sqlalchemy or NAME:dsn"
        )
        with pytest.raises(ConfigError, match=re.escape("which has no host; use NAME:sqlalchemy or NAME:dsn")):
            database.url("host")
    finally:
        database.drop()


def test_a_server_gives_each_part_as_libpq_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    from dbscope.backends.pg_connect import server_address
    from dbscope.urls import parse_backend_url

    for name in ("PGHOST", "PGPORT", "PGUSER"):
        monkeypatch.delenv(name, raising=False)
    full = server_address(parse_backend_url("postgresql://ana:p%40ss%3Aw@db.local:5433/postgres?sslmode=disable"))
    parts = {part: full.url("dbscope_x_gw0_reset", part) for part in ("host", "port", "user", "password", "database")}
    assert parts == {
        "host": "db.local",
        "port": "5433",
        "user": "ana",
        "password": "p@ss:w",  # decoded: an app quotes it again when it builds its URL
        "database": "dbscope_x_gw0_reset",
    }
    bare = server_address(parse_backend_url("postgresql:///postgres"))
    monkeypatch.setenv("PGUSER", "bob")
    assert (bare.url("d", "port"), bare.url("d", "user"), bare.url("d", "password")) == ("5432", "bob", "")
    with pytest.raises(ConfigError) as info:
        full.url("d", "path")
    assert str(info.value) == (
        "d is a database of a PostgreSQL server, which has no file path; use NAME:host, NAME:port, NAME:user, "
        "NAME:password, NAME:database, NAME:sqlalchemy or NAME:dsn"
    )


# --- the name of a worker's database ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "file"])
def test_a_label_given_again_while_its_database_lives_gets_a_database_of_its_own(
    backend: str, request: pytest.FixtureRequest
) -> None:
    sqlite: SQLiteBackend = request.getfixturevalue(f"{backend}_backend")
    template = sqlite.template(NO_SQL, NO_SQL)
    made = [sqlite.create(template, label="reset") for _ in range(3)]  # one per set of migrations
    # sqlite://'s directory is the process's own, so its names carry no run id
    name = "dbscope_reset" if backend == "memory" else f"dbscope_{sqlite.run_id}_reset"
    try:
        assert [database.name for database in made] == [name, f"{name}_2", f"{name}_3"]
        assert len({database.url("dsn") for database in made}) == 3
        made[0].drop()
        made[0] = sqlite.create(template, label="reset")  # the name is free again once dropped
        assert made[0].name == name
    finally:
        for database in made:
            database.drop()


# --- an app that builds its URL from parts at import ------------------------------------------

# (The xdist controller, which runs no test, imports conftest.py before its workers start and
# without the worker variables: the app's settings give a default there, as real settings do.)
SQLITE_CONFTEST = """
import os, sqlite3

# as an app's settings module does, at import
APP_URL = f"sqlite:///{os.environ.get('DB_PATH', 'app.sqlite3')}"

def connect():
    return sqlite3.connect(APP_URL.removeprefix("sqlite:///"))

def identity(conn):
    return conn.execute("PRAGMA database_list").fetchall()[0][2]
"""

SERVER_CONFTEST = """
import os
from urllib.parse import quote

import psycopg

# as an app's settings module does, at import (the FastAPI template's POSTGRES_* settings)
APP_URL = "postgresql://{user}:{password}@{host}:{port}/{database}".format(
    user=quote(os.environ.get("POSTGRES_USER", "app"), safe=""),
    password=quote(os.environ.get("POSTGRES_PASSWORD", ""), safe=""),
    host=os.environ.get("POSTGRES_SERVER", "localhost"),
    port=os.environ.get("POSTGRES_PORT", "5432"),
    database=os.environ.get("POSTGRES_DB", "app"),
)

def connect():
    return psycopg.connect(APP_URL)

def identity(conn):
    return conn.execute("SELECT current_database()").fetchone()[0]
"""

MARIADB_CONFTEST = """
import os
from urllib.parse import quote

import app

# as an app's settings module does, at import (MYSQL_* as the official images name them)
APP_URL = "mysql://{user}:{password}@{host}:{port}/{database}".format(
    user=quote(os.environ.get("MYSQL_USER", "app"), safe=""),
    password=quote(os.environ.get("MYSQL_PASSWORD", ""), safe=""),
    host=os.environ.get("MYSQL_HOST", "localhost"),
    port=os.environ.get("MYSQL_PORT", "3306"),
    database=os.environ.get("MYSQL_DATABASE", "app"),
)

def connect():
    return app.MySQLConnection(APP_URL)

def identity(conn):
    return conn.execute("SELECT DATABASE()").fetchone()[0]
"""

APP_TESTS = """
import os, pathlib
import pytest, conftest

@pytest.mark.parametrize("n", range(8))
def test_the_app_reaches_its_workers_database_and_sees_only_the_seed(n):
    conn = conftest.connect()
    try:
        database = conftest.identity(conn)
        count = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        conn.execute(f"INSERT INTO items (name) VALUES ('test-{n}')")
        conn.commit()
    finally:
        conn.close()
    assert count == 1  # what the test before it committed is gone
    assert database in os.environ["DATABASE_URL"]  # the database dbscope gave this worker
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (pathlib.Path(os.environ["SEEN_DIR"]) / f"{worker}-{n}").write_text(database)

def test_the_parts_are_those_of_the_whole_url():
    url = os.environ["DATABASE_URL"]
    if "DB_PATH" in os.environ:
        assert url.endswith("/" + os.environ["DB_PATH"].lstrip("/"))
    elif "MYSQL_HOST" in os.environ:
        parts = __import__("urllib.parse").parse.urlsplit(url)
        assert (parts.hostname, parts.port, parts.path) == (
            os.environ["MYSQL_HOST"], int(os.environ["MYSQL_PORT"]), "/" + os.environ["MYSQL_DATABASE"]
        )
        assert (parts.username or "", parts.password or "") == (os.environ["MYSQL_USER"], os.environ["MYSQL_PASSWORD"])
    else:
        parts = __import__("urllib.parse").parse.urlsplit(url)
        assert (parts.hostname, parts.port, parts.path) == (
            os.environ["POSTGRES_SERVER"], int(os.environ["POSTGRES_PORT"]), "/" + os.environ["POSTGRES_DB"]
        )
        assert (parts.username or "", parts.password or "") == (
            os.environ["POSTGRES_USER"], os.environ["POSTGRES_PASSWORD"]
        )

# xdist needs equal test ids on every worker: a stable label, not the worker's own URL
@pytest.mark.parametrize("url", [os.environ["DATABASE_URL"]], ids=["worker-database"])
def test_parametrized_by_the_url_under_a_stable_label(url):
    assert url == os.environ["DATABASE_URL"]
"""


def _server_url_with_secret(pg_url: str) -> tuple[str, str | None]:
    """The test server's URL with a password in it, and that password (None when there is none to check).

    A server that lets any password in (trust) is given :data:`SECRET`; one that checks
    passwords keeps its URL and its own password, if it has one.
    """
    import psycopg

    parts = urlsplit(pg_url)
    if parts.password:
        return pg_url, parts.password
    netloc = f"{quote(parts.username or 'postgres', safe='')}:{SECRET}@{parts.netloc.rpartition('@')[2]}"
    with_secret = urlunsplit(parts._replace(netloc=netloc))
    try:
        psycopg.connect(with_secret, connect_timeout=3).close()
    except psycopg.OperationalError:
        return pg_url, None
    return with_secret, SECRET


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql", "mariadb"])
def test_an_app_that_builds_its_url_from_parts_at_import_is_isolated(
    backend: str, mode: str, pytester: pytest.Pytester, make_project: MakeCellProject, request: pytest.FixtureRequest
) -> None:
    secret: str | None = None
    if backend == "sqlite-file":
        url, env_var, conftest = f"sqlite:///{pytester.path}/dbs", "DB_PATH:path", SQLITE_CONFTEST
    elif backend == "mariadb":
        url = url_of(backend, request, pytester.path)
        secret = urlsplit(url).password  # the test server's own, if it has one
        env_var, conftest = MARIADB_PARTS, MARIADB_CONFTEST
    else:
        url, secret = _server_url_with_secret(str(request.getfixturevalue("pg_url")))
        env_var, conftest = SERVER_PARTS, SERVER_CONFTEST
    make_project(
        Cell(backend, "reset", url),
        files={"conftest.py": conftest, "test_app.py": APP_TESTS},
        ini=f"dbscope_env_var = DATABASE_URL:dsn, {env_var}",
    )
    seen = pytester.mkdir("seen")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEEN_DIR", str(seen))
        env.setenv("DBSCOPE_DEBUG", "isolation,database")  # dbscope's log lines, too, must not show the password
        result = pytester.runpytest_subprocess(
            *MODES[mode], "-p", "no:randomly", "-p", "no:cacheprovider", "-rA", "--dbscope-report=report.json"
        )

    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.OK, output
    result.assert_outcomes(passed=10)
    by_worker: dict[str, set[str]] = {}
    for record in seen.iterdir():
        by_worker.setdefault(record.name.rpartition("-")[0], set()).add(record.read_text())
    assert len(by_worker) == (2 if mode == "xdist" else 1), by_worker
    assert all(len(databases) == 1 for databases in by_worker.values()), by_worker  # every test of a worker: one
    database_of = {worker: next(iter(databases)) for worker, databases in by_worker.items()}
    for database in database_of.values():  # named after the strategy; the run id is the process's
        assert re.search(r"dbscope_[0-9a-f]+_reset\b", database), database_of
    assert len(set(database_of.values())) == len(database_of), database_of  # and one of its own
    if secret is not None:
        assert secret not in output
        assert secret not in (pytester.path / "report.json").read_text()


# --- test ids of a suite parametrized by its database URL -------------------------------------

LABELLED_TESTS = """
import os, sqlite3
import pytest

# read at import, so the parameter is part of the test ids xdist compares between its workers;
# each worker's database has its own URL, the label is the same everywhere
@pytest.mark.parametrize("url", [os.environ["DATABASE_URL"]], ids=["worker-database"])
@pytest.mark.parametrize("n", range(4))
def test_parametrized_by_the_url(url, n):
    assert url == os.environ["DATABASE_URL"]
    conn = sqlite3.connect(os.environ["RAW_DSN"], uri=os.environ["RAW_DSN"].startswith("file:"))
    try:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        conn.execute("INSERT INTO items (name) VALUES ('written')")
        conn.commit()
    finally:
        conn.close()
"""


@pytest.mark.parametrize("strategy", ["reset", "rollback"])
def test_a_suite_parametrized_by_its_url_under_a_stable_label_runs_under_xdist(
    strategy: str, make_project: MakeCellProject
) -> None:
    pytester = make_project(
        Cell("sqlite-memory", strategy, "sqlite://"),
        files={"test_labelled.py": LABELLED_TESTS},
        ini="dbscope_env_var = DATABASE_URL, RAW_DSN:dsn",
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider", "-rA")

    output = "\n".join(result.outlines + result.errlines)
    assert "Different tests were collected" not in output
    assert result.ret == pytest.ExitCode.OK, output
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["PASSED test_labelled.py::test_parametrized_by_the_url[0-worker-database]"])
