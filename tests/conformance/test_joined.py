"""Under ``rollback`` the application joins the test's transaction, on every backend, serially and under ``-n 2``.

The application builds its engine, its sessionmaker and (on SQLite) its async engine at
import time from the environment, as real applications do; the settings
``dbscope_app_engines`` and ``dbscope_app_sessions`` name them, and nothing in the
application changes. Each channel commits — through the app's engine, its sessionmaker, a
server thread like a test client's, an asyncio task (through the app's async sessionmaker and,
two tasks at once, through its async engine), ``db_session`` — and every test
still starts on the seeded row alone with the same next id: the commits were savepoints
of the test's transaction, which dbscope rolled back. A thread that outlives its test
gets an error naming that test. DDL through the joined connection is undone with the rest.

The app's async engine joins on every backend (see dbscope.joined): aiosqlite's on SQLite,
aiomysql's on MariaDB, and on PostgreSQL the app's asyncpg engine runs psycopg's async
dialect on the test's connection for the length of each test.

A scope the test opens itself (the manager's API) while its own holds the worker's database
gets a clone of its own: it starts on the seeded row, and neither sees the other's writes.
"""

from __future__ import annotations

import textwrap

import pytest

from .conftest import Cell, MakeCellProject, report_records

MODES = {"serial": (), "xdist": ("-n", "2", "--dist", "loadfile")}

JOIN_APP = """
import os
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine(os.environ["DATABASE_URL"])
SessionLocal = sessionmaker(bind=engine)
async_engine = create_async_engine(os.environ["ASYNC_DATABASE_URL"])
AsyncSessionLocal = async_sessionmaker(bind=async_engine)

def count_and_insert(conn, name):
    count = conn.execute(text("SELECT count(*) FROM items")).scalar_one()
    new_id = conn.execute(text("INSERT INTO items (name) VALUES (:n) RETURNING id"), {"n": name}).scalar_one()
    return count, new_id

def through_engine(name):
    with engine.begin() as conn:
        return count_and_insert(conn, name)

def through_session(name):
    with SessionLocal() as session:
        result = count_and_insert(session, name)
        session.commit()
        return result

def rolled_back_then_committed(name):
    with SessionLocal() as session:
        count_and_insert(session, "undone by the app")
        session.rollback()
        result = count_and_insert(session, name)
        session.commit()
        return result

async def through_async_session(name):
    async with AsyncSessionLocal() as session:
        count = (await session.execute(text("SELECT count(*) FROM items"))).scalar_one()
        insert = text("INSERT INTO items (name) VALUES (:n) RETURNING id")
        new_id = (await session.execute(insert, {"n": name})).scalar_one()
        await session.commit()
        return count, new_id

async def through_async_engine(name):
    async with async_engine.begin() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM items"))).scalar_one()
        insert = text("INSERT INTO items (name) VALUES (:n) RETURNING id")
        return count, (await conn.execute(insert, {"n": name})).scalar_one()
"""

JOIN_TESTS = """
import asyncio, threading, pytest
from concurrent.futures import ThreadPoolExecutor
import joinapp

@pytest.mark.parametrize("n", range(2))
def test_app_engine(n, db):
    assert joinapp.through_engine(f"engine-{n}") == (1, 2)
    assert db.execute("SELECT count(*) FROM items").scalar() == 2  # the test sees what the app committed

@pytest.mark.parametrize("n", range(2))
def test_app_sessionmaker(n):
    assert joinapp.through_session(f"session-{n}") == (1, 2)

@pytest.mark.parametrize("n", range(2))
def test_app_rolls_back_then_commits(n):
    assert joinapp.rolled_back_then_committed(f"after-rollback-{n}")[0] == 1

@pytest.mark.parametrize("n", range(2))
def test_server_thread(n):
    results = []
    server = threading.Thread(target=lambda: results.append(joinapp.through_session(f"thread-{n}")))
    server.start()
    server.join()
    assert results == [(1, 2)]

def test_thread_pool(db):
    with ThreadPoolExecutor(4) as pool:  # their statements interleave, one at a time, in the test's transaction
        results = list(pool.map(joinapp.through_engine, [f"pool-{i}" for i in range(8)]))
    assert sorted(new_id for _, new_id in results) == list(range(2, 10))
    assert db.execute("SELECT count(*) FROM items").scalar() == 9

@pytest.mark.parametrize("n", range(2))
def test_async_task(n):
    async def main():
        if hasattr(joinapp, "AsyncSessionLocal"):
            return await asyncio.create_task(joinapp.through_async_session(f"task-{n}"))
        return await asyncio.create_task(asyncio.to_thread(joinapp.through_session, f"task-{n}"))
    assert asyncio.run(main()) == (1, 2)

@pytest.mark.parametrize("n", range(2))
def test_async_task_through_the_app_async_engine(n, db):
    async def main():  # two tasks at once: their statements take turns on the test's connection
        if hasattr(joinapp, "async_engine"):
            return await asyncio.gather(*(joinapp.through_async_engine(f"engine-task-{n}-{i}") for i in range(2)))
        names = [f"engine-task-{n}-{i}" for i in range(2)]
        return await asyncio.gather(*(asyncio.to_thread(joinapp.through_engine, name) for name in names))
    assert sorted(new_id for _, new_id in asyncio.run(main())) == [2, 3]
    assert db.execute("SELECT count(*) FROM items").scalar() == 3

@pytest.mark.parametrize("n", range(2))
def test_db_session(n, db_session):
    assert joinapp.count_and_insert(db_session, f"db_session-{n}") == (1, 2)
    db_session.commit()

def test_z_the_next_test_sees_nothing(db):
    assert [tuple(r) for r in db.execute("SELECT id, name FROM items").rows] == [(1, "seeded")]
"""

DDL_TESTS = """
import joinapp
from sqlalchemy import text

def test_1_creates_a_table_through_the_app_engine():
    with joinapp.engine.begin() as conn:
        conn.execute(text("CREATE TABLE made_by_the_app (x integer)"))
        conn.execute(text("INSERT INTO made_by_the_app (x) VALUES (1)"))

def test_2_the_table_is_gone(db):
    with joinapp.engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM items"))
    db.execute("CREATE TABLE made_by_the_app (x integer)")  # no such table: creating it works
"""

LATE_THREAD_TESTS = """
import threading
import joinapp
from sqlalchemy import text

STARTED, GO, OUTCOME = threading.Event(), threading.Event(), []

def late():
    with joinapp.engine.connect() as conn:  # a request in a server thread, still going after its test
        conn.execute(text("SELECT count(*) FROM items"))
        STARTED.set()
        GO.wait(30)
        try:
            conn.execute(text("SELECT count(*) FROM items"))
            OUTCOME.append("no error")
        except Exception as exc:
            OUTCOME.append(f"{type(exc).__name__}: {exc}")

def test_1_leaves_a_thread_running():
    threading.Thread(target=late, daemon=True).start()
    STARTED.wait(30)

def test_2_that_thread_is_told_whose_connection_it_was():
    GO.set()
    for _ in range(300):
        if OUTCOME:
            break
        threading.Event().wait(0.1)
    assert OUTCOME and "ClientClosedError" in OUTCOME[0], OUTCOME
    assert "test_1_leaves_a_thread_running" in OUTCOME[0], OUTCOME
"""

EXTRA_SCOPE_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(2))
def test_an_extra_scope_gets_a_database_of_its_own(n, db, dbscope):
    db.execute("INSERT INTO items (name) VALUES ('the test')")
    with dbscope.scope(f"extra {n}") as extra:  # the worker's database is in the test's transaction
        other = extra.client()
        assert [tuple(r) for r in other.execute("SELECT id, name FROM items").rows] == [(1, "seeded")]
        with other.transaction() as tx:
            tx.execute("INSERT INTO items (name) VALUES ('the extra scope')")
    assert [r[0] for r in db.execute("SELECT name FROM items ORDER BY id").rows] == ["seeded", "the test"]

def test_z_nothing_of_either_is_left(db):
    assert [tuple(r) for r in db.execute("SELECT id, name FROM items").rows] == [(1, "seeded")]
"""


def _rollback_cell(request: pytest.FixtureRequest, backend_url: str) -> Cell:
    return Cell(request.node.callspec.params["backend_url"], "rollback", backend_url)


def _settings(pytester: pytest.Pytester, lines: str) -> None:
    ini = pytester.path / "pytest.ini"
    ini.write_text(ini.read_text().rstrip("\n") + "\n" + textwrap.dedent(lines))


def _run(pytester: pytest.Pytester, mode: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *MODES[mode], "-p", "no:randomly", "-p", "no:cacheprovider", "--dbscope-report=report.json", "-rA"
    )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_app_joins_the_tests_transaction(
    request: pytest.FixtureRequest, backend_url: str, mode: str, make_project: MakeCellProject
) -> None:
    cell = _rollback_cell(request, backend_url)
    files = {"joinapp.py": JOIN_APP, "test_joined.py": JOIN_TESTS, "test_late_thread.py": LATE_THREAD_TESTS}
    files["test_extra_scope.py"] = EXTRA_SCOPE_TESTS
    if cell.dialect != "mysql":  # MariaDB commits DDL at once, whatever the transaction
        files["test_ddl.py"] = DDL_TESTS
    pytester = make_project(cell, files=files)
    engines, sessions = "joinapp:engine joinapp:async_engine", "joinapp:SessionLocal joinapp:AsyncSessionLocal"
    _settings(pytester, f"dbscope_app_engines = {engines}\ndbscope_app_sessions = {sessions}\n")
    result = _run(pytester, mode)
    records = report_records(pytester)
    failures = "\n".join(line for line in result.outlines if "FAILED" in line or "ERROR" in line)
    expected = 16 + 2 + 3 + (2 if cell.dialect != "mysql" else 0)
    assert result.parseoutcomes().get("passed") == expected, failures or result.stdout.str()[-3000:]
    assert all(record["outcome"] == "passed" for record in records.values()), failures
    # nothing was committed behind the test's back: no restore was needed
    assert "committed to" not in result.stdout.str() + result.stderr.str()


FLASK_APP = """
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

db = SQLAlchemy()
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db.init_app(app)  # the engine is built here, at import; db.session finds it through the app

@app.post("/items/<name>")
def add(name):
    count = db.session.execute(text("SELECT count(*) FROM items")).scalar_one()
    db.session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name})
    db.session.commit()
    return {"count": count}
"""

FLASK_TESTS = """
import pytest
import flaskapp
from sqlalchemy import text

@pytest.mark.parametrize("n", range(2))
def test_a_request_commits_through_db_session(n, db):
    with flaskapp.app.test_client() as client:
        assert client.post(f"/items/request-{n}").get_json() == {"count": 1}
    assert db.execute("SELECT count(*) FROM items").scalar() == 2  # the test sees what the app committed

@pytest.mark.parametrize("n", range(2))
def test_an_app_context_commits(n):
    with flaskapp.app.app_context():
        session = flaskapp.db.session
        assert session.execute(text("SELECT count(*) FROM items")).scalar_one() == 1
        session.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": f"context-{n}"})
        session.commit()

def test_z_the_next_test_sees_nothing(db):
    assert [tuple(r) for r in db.execute("SELECT id, name FROM items").rows] == [(1, "seeded")]
"""


def test_a_flask_apps_engines_join_when_the_setting_names_the_app(
    request: pytest.FixtureRequest, backend_url: str, make_project: MakeCellProject
) -> None:
    """``dbscope_app_engines = module:app`` of a Flask app: the engines its Flask-SQLAlchemy made join."""
    cell = _rollback_cell(request, backend_url)
    pytester = make_project(cell, files={"flaskapp.py": FLASK_APP, "test_flask.py": FLASK_TESTS})
    _settings(pytester, "dbscope_app_engines = flaskapp:app\n")
    result = _run(pytester, "serial")
    failures = "\n".join(line for line in result.outlines if "FAILED" in line or "ERROR" in line)
    assert result.parseoutcomes().get("passed") == 5, failures or result.stdout.str()[-3000:]
    assert "committed to" not in result.stdout.str() + result.stderr.str()
