"""Fixtures of the festival suite, the same under dbscope and under the legacy setup.

`db` itself comes from dbscope (or, for the demo's legacy run, from legacy/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from festival import database
from festival.app import app
from starlette.testclient import TestClient


@pytest.fixture(autouse=True)
def fresh_app_database(db) -> Iterator[None]:
    """The app's database singleton, closed around every test.

    Depending on `db` orders the teardown: the app's engine is disposed *before* dbscope
    ends the scope and looks for connections left open to the test's database, so the
    app's pool is never reported as a leak. (dbscope also runs the same reset as its
    `dbscope_reset_hooks`, at every scope boundary.)
    """
    database.reset_for_testing()
    yield
    database.reset_for_testing()


@pytest.fixture
def api() -> Iterator[TestClient]:
    """The festival app behind Starlette's TestClient: the app runs in the client's own
    thread and opens the database named by DATABASE_URL, i.e. this test's database."""
    with TestClient(app) as client:
        yield client


@pytest.fixture
def user(db):
    """A registered user."""
    result = db.execute("INSERT INTO users (name, email) VALUES (?, ?)", ["Ana Rivera", "ana@example.com"])
    return {"id": result.last_insert_rowid, "name": "Ana Rivera", "email": "ana@example.com"}
