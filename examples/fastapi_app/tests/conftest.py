"""Fixtures of the bookshop suite.

The app is imported inside the ``client`` fixture, not at the top of a module: under the
``clone`` strategy each test's database has its own URL, and ``dbscope_reset_modules``
(``bookshop.database,bookshop.main``) makes the import read it again; under ``rollback``
the URL is the worker's for the whole run and the app is imported once.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from factories import ALL
from fastapi.testclient import TestClient


@pytest.fixture(autouse=True)
def factories(db_session) -> None:
    """Every factory writes through this test's ``db_session``."""
    for factory_class in ALL:
        factory_class._meta.sqlalchemy_session = db_session


@pytest.fixture
def client(db_session) -> Iterator[TestClient]:
    """The app behind FastAPI's TestClient, which runs it in a thread of its own.

    Depends on ``db_session`` so that it is closed first: the server thread has stopped
    and the app's engine given back its connections before dbscope ends the test.
    """
    main = importlib.import_module("bookshop.main")
    database = importlib.import_module("bookshop.database")
    with TestClient(main.app) as test_client:
        yield test_client
    database.engine.dispose()
