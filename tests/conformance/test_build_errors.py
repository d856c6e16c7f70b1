"""A template that cannot be built stops the run with dbscope's own message, in every cell.

The error comes before any conftest or test module is imported: an application that reads
``DATABASE_URL`` at import time must never hide it behind its own ``KeyError``, and no
test may run against another database instead.
"""

from __future__ import annotations

import pytest

from .conftest import STRATEGIES, Cell, MakeCellProject

APP_CONFTEST = """
import os
print("conftest imported")
ENGINE_URL = os.environ["DATABASE_URL"]  # what real apps do at import time
"""


def test_a_broken_migration_is_shown_before_any_module_is_imported(cell: Cell, make_project: MakeCellProject) -> None:
    broken = (
        "CREATE TABLE items (id integer PRIMARY KEY);\nCREATE TABLE broken (x integer REFERENCES nowhere(x) oops);\n"
    )
    pytester = make_project(
        cell, files={"conftest.py": APP_CONFTEST, "test_app.py": "def test_x():\n    pass\n"}, migrations=broken
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbscope: MigrationError: *0001_items.sql*"])
    output = result.stdout.str() + result.stderr.str()
    assert "KeyError" not in output
    assert "conftest imported" not in output


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_refused_remote_server_is_shown_before_any_module_is_imported(
    strategy: str, make_project: MakeCellProject
) -> None:
    remote = Cell("postgresql", strategy, "postgresql://postgres@db.example.com:5432/postgres")
    pytester = make_project(remote, files={"conftest.py": APP_CONFTEST, "test_app.py": "def test_x():\n    pass\n"})
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dbscope: BackendUnavailableError: *db.example.com*dbscope_allow_remote*"])
    assert "conftest imported" not in result.stdout.str() + result.stderr.str()
