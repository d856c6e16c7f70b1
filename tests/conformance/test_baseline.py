"""Under ``reset`` and ``rollback`` every test starts from the suite's baseline, not the bare template.

Real suites build part of their database in their own higher-scoped fixtures: a session
fixture adds a superuser, a module fixture creates its table and drops it when the module
ends. Each test must start from exactly that state (nothing of the tests before it), in
every backend, serially and under ``-n 2``, with no dbscope fixture and no setting but the
strategy.
"""

from __future__ import annotations

import pytest

from .conftest import Cell, MakeCellProject

SUITE_CONFTEST = """
import pytest, app

@pytest.fixture(scope="session", autouse=True)
def superuser():
    app.run_raw("INSERT INTO items (name) VALUES ('superuser')")
    yield

@pytest.fixture(scope="module")
def module_table(request):
    name = "table_of_" + request.module.__name__.rsplit(".", 1)[-1]
    app.run_raw(f"CREATE TABLE {name} (x integer)")
    app.run_raw(f"INSERT INTO {name} VALUES (1)")
    yield name
    app.run_raw(f"DROP TABLE {name}")
"""

MODULE_TESTS = """
import pytest, app

def names(table="items", column="name"):
    conn = app.raw_connect()
    try:
        return sorted(str(row[0]) for row in conn.execute(f"SELECT {column} FROM {table}"))
    finally:
        conn.close()

@pytest.mark.parametrize("n", range(3))
def test_starts_from_the_suites_baseline(module_table, n):
    assert names() == ["seeded", "superuser"]  # the seed, the session fixture's row, nothing of other tests
    assert names(module_table, "x") == ["1"]  # this module's table, as its fixture left it
    assert app.schema()[0] == sorted(["items", module_table])  # and no other module's table
    app.run_raw(f"INSERT INTO items (name) VALUES ('written by {module_table} {n}')")
    app.run_raw(f"INSERT INTO {module_table} VALUES (2)")

def test_db_sees_the_baseline_too(db, module_table):
    assert db.execute("SELECT count(*) FROM items").scalar() == 2
    db.execute("INSERT INTO items (name) VALUES ('through db')")
"""


@pytest.mark.parametrize("mode", ["serial", "xdist"])
@pytest.mark.parametrize("strategy", ["reset", "rollback"])
def test_every_test_starts_from_what_the_suites_own_fixtures_built(
    backend_url: str, strategy: str, mode: str, make_project: MakeCellProject, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["backend_url"]
    files = {"conftest.py": SUITE_CONFTEST, **{f"test_module_{m}.py": MODULE_TESTS for m in ("a", "b", "c")}}
    pytester = make_project(Cell(backend, strategy, backend_url), files=files)
    args = ("-n", "2", "--dist", "loadfile") if mode == "xdist" else ()
    result = pytester.runpytest_subprocess(*args, "-p", "no:randomly")
    result.assert_outcomes(passed=12)


# A suite that builds its whole schema itself, in a session fixture: metadata.create_all
# (SQLite) or alembic's upgrade (PostgreSQL), from the URL the app reads; no dbscope_migrations.
SCHEMA_FIXTURE = {
    "sqlite": """
import os, pytest
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("users", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String, unique=True))

@pytest.fixture(scope="session", autouse=True)
def schema():
    engine = sa.create_engine(os.environ["DATABASE_URL"])
    metadata.create_all(engine)
    engine.dispose()
""",
    "postgresql": """
import os, pytest
from alembic import command
from alembic.config import Config

@pytest.fixture(scope="session", autouse=True)
def schema():
    config = Config("alembic.ini")
    config.set_main_option("script_location", "migrations")
    config.set_main_option("sqlalchemy.url", os.environ["DATABASE_URL"])
    command.upgrade(config, "head")
""",
}

USERS_TESTS = """
import os, pytest
import sqlalchemy as sa

@pytest.mark.parametrize("n", range(4))
def test_each_test_sees_the_schema_and_no_other_tests_rows(n):
    engine = sa.create_engine(os.environ["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 0
            conn.execute(sa.text("INSERT INTO users (email) VALUES ('same@example.com')"))  # unique: twice fails
    finally:
        engine.dispose()
"""


@pytest.mark.parametrize("mode", ["serial", "xdist"])
@pytest.mark.parametrize("backend", ["sqlite-memory", "postgresql"])
def test_a_schema_built_by_a_session_fixture_is_the_baseline(
    backend: str, mode: str, pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    from test_sqlalchemy_sources import make_alembic

    dialect = "postgresql" if backend == "postgresql" else "sqlite"
    url = str(request.getfixturevalue("pg_url")) if dialect == "postgresql" else "sqlite://"
    if dialect == "postgresql":
        make_alembic(pytester)
    pytester.makeconftest(SCHEMA_FIXTURE[dialect])
    pytester.makepyfile(test_users_a=USERS_TESTS, test_users_b=USERS_TESTS)
    pytester.makefile(".ini", pytest=f"[pytest]\ndbscope_url = {url}\ndbscope_strategy = reset\n")
    args = ("-n", "2") if mode == "xdist" else ()
    pytester.runpytest_subprocess(*args, "-p", "no:randomly").assert_outcomes(passed=8)
