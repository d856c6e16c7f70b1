"""Shared helpers for dbscope's own tests."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Generator
from typing import Protocol

import pytest

# In-process pytester runs drop every module first imported during the run when it ends. A
# metadata fingerprint compiles DDL for both SQLAlchemy dialects; imported anew in a later run,
# the PostgreSQL dialect registers its functions again and SQLAlchemy warns (an error here).
# Imported once up front, they stay.
import sqlalchemy.dialects.postgresql  # noqa: F401, E402
import sqlalchemy.dialects.sqlite  # noqa: F401, E402

# pgsupport: the PostgreSQL server these tests use; reliability.figures: what the reliability tests
# measured, collected from xdist workers (its hooks must run in the controller too)
pytest_plugins = ["pgsupport", "reliability.figures"]

# tests/replica is a suite that tests/test_real_world.py runs in a sandbox, not part of ours
collect_ignore = ["replica"]

USERS_SQL = """
CREATE TABLE users (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: a load, soak, fault or fuzz test, a whole example suite, or a repeat of a conformance case in "
        "another invocation: `./run tests --all` and CI run them, `./run tests` (-m 'not slow') does not",
    )


class MakeProject(Protocol):
    """The ``project`` fixture: ``project(ini=..., migrations=...)`` returns the pytester.

    Test modules name it in annotations only (``if TYPE_CHECKING: from conftest import
    MakeProject``): at run time ``conftest`` may be another directory's conftest.py.
    """

    def __call__(self, ini: str = "", migrations: dict[str, str] | None = None) -> pytest.Pytester: ...


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester``, for a run inside a run that may itself be an xdist worker.

    xdist's variables describe the outer worker, not the run a test starts: a project that
    reads ``PYTEST_XDIST_WORKER`` must see it only from its own workers. And the projects leave
    out the pytest plugins of hypothesis, anyio, pytest-asyncio and Faker (factory_boy's), which
    take 1.4 s and 0.5 s of every run's start (and pytest-asyncio warns in a project without its
    loop setting); a test of a project that uses one sets ``PYTEST_ADDOPTS`` itself.
    """
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:anyio -p no:asyncio -p no:faker")
    return pytester


@pytest.fixture
def project(pytester: pytest.Pytester) -> MakeProject:
    """A pytester project with a migrations/ directory and a pytest.ini using it."""

    def make(ini: str = "", migrations: dict[str, str] | None = None) -> pytest.Pytester:
        migrations_dir = pytester.mkdir("migrations")
        for name, sql in (migrations or {"0001_users.sql": USERS_SQL}).items():
            (migrations_dir / name).write_text(textwrap.dedent(sql))
        pytester.makefile(".ini", pytest="[pytest]\ndbscope_migrations = migrations\n" + textwrap.dedent(ini))
        return pytester

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI=true a skipped test is a failure: CI must run every test it has."""
    report = yield
    if report.skipped and os.environ.get("CI", "").lower() == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {reason}"
    return report
