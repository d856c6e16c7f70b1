"""Fixtures of the library suite.

The app is imported inside the ``client`` fixture, not at the top of a module: under the
``clone`` strategy each test's database has its own URL, and ``dbscope_reset_modules``
(``lending.app``) makes the import read it again; under ``rollback`` the URL is the
worker's for the whole run and the app is imported once.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from factories import ALL
from flask.testing import FlaskClient
from lending.models import db


@pytest.fixture(autouse=True)
def factories(db_session) -> None:
    """Every factory writes through this test's ``db_session``."""
    for factory_class in ALL:
        factory_class._meta.sqlalchemy_session = db_session


@pytest.fixture
def client(db_session) -> Iterator[FlaskClient]:
    """The app's test client (requests run in the test's thread, each in its own app context).

    Depends on ``db_session`` so that it ends first: the app's engine gives back its
    connections before dbscope ends the test.
    """
    app = importlib.import_module("lending.app").app
    with app.test_client() as test_client:
        yield test_client
    with app.app_context():
        db.engine.dispose()
