"""Under pytest-xdist the controller hands the shared server's URL to workers through workerinput."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import MakeProject

PG_USERS = "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);"

HANDED_OVER = """
import os
from urllib.parse import urlsplit

import pytest

from dbscope import plugin


@pytest.mark.parametrize("n", range(4))
def test_the_worker_got_the_url_from_xdist(request, db, n):
    assert "DBSCOPE_CLUSTER_URL" not in os.environ  # not through the environment any more
    handed = request.config.workerinput.get("dbscope_cluster_url")
    if os.environ["EXPECT_SERVER"] == "yes":
        assert urlsplit(handed).port == urlsplit(os.environ["DATABASE_URL"]).port
        assert request.config.stash[plugin.CONFIG_KEY].url == handed
    else:
        assert handed is None
"""


def test_the_controllers_throwaway_cluster_reaches_workers_through_workerinput(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch, pg_bindir: Path
) -> None:
    monkeypatch.setenv("EXPECT_SERVER", "yes")
    pytester = project(ini="dbscope_url = postgresql+proc://\n", migrations={"0001_users.sql": PG_USERS})
    pytester.makepyfile(test_handed=HANDED_OVER)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark", "-p", "no:randomly").assert_outcomes(passed=4)


def test_a_backend_without_a_shared_server_hands_nothing_over(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPECT_SERVER", "no")
    pytester = project()
    pytester.makepyfile(test_handed=HANDED_OVER)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:benchmark", "-p", "no:randomly").assert_outcomes(passed=4)
