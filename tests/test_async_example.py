"""The async example users copy passes as shipped: examples/async_app, an asyncpg/aiosqlite app.

Its suite (its own pytest.ini: ``dbscope_strategy = rollback``, the app's ``AsyncEngine`` and
``async_sessionmaker`` named in the settings, ``DATABASE_URL:async``) runs as its own project
under ``-n 2`` and in one process, on in-memory SQLite and on PostgreSQL, where the app's ``postgresql+asyncpg://``
engine joins the test's transaction too. Every test passes and nothing the app committed
escaped the test's transaction.
"""

from __future__ import annotations

import pytest
from test_rollback_examples import SERIAL, assert_all_passed_joined, run_example

pytestmark = pytest.mark.slow  # a whole example suite: `./run tests --all` and CI run it

APP = "async_app"


@pytest.fixture
def with_asyncio(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The sandbox runs leave pytest-asyncio out (tests/conftest.py); this suite needs it."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:anyio -p no:faker")
    return pytester


def test_the_async_example_passes_under_rollback_on_sqlite(with_asyncio: pytest.Pytester) -> None:
    assert_all_passed_joined(run_example(with_asyncio, APP))
    assert_all_passed_joined(run_example(with_asyncio, APP, *SERIAL))


def test_the_async_example_passes_under_rollback_on_postgresql(with_asyncio: pytest.Pytester, pg_url: str) -> None:
    assert_all_passed_joined(run_example(with_asyncio, APP, "-o", f"dbscope_url={pg_url}"))
    assert_all_passed_joined(run_example(with_asyncio, APP, "-o", f"dbscope_url={pg_url}", *SERIAL))
