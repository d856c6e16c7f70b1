"""The PostgreSQL server dbscope's own tests use, and a fixture that finds it.

Point DBSCOPE_TEST_PG_URL at a server (default: postgres on 127.0.0.1:5432). Without
one, PostgreSQL tests skip with the reason; under CI=true a skip fails (conftest.py).
"""

from __future__ import annotations

import os

import pytest

PG_URL = os.environ.get("DBSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_unavailable_reason() -> str | None:
    """None when the test server answers, else why PostgreSQL tests cannot run."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install 'dbscope[postgres]'"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL server at {PG_URL} ({str(exc).strip().splitlines()[0]}); set DBSCOPE_TEST_PG_URL"
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test server's maintenance URL; skips (fails under CI) when there is none."""
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(f"PostgreSQL: {reason}")
    return PG_URL
