"""No silent fallback: whether this process runs tests is read from pytest-xdist's own decision.

``-n auto --pdb``, ``--collect-only -n 2``, ``-n 0`` and ``-p no:xdist`` all run (or
collect) in this one process: the worker's database must be in the environment before the
conftests are imported, exactly as in a plain run, and the report must say dbscope ran.
The suite's own fallback (a shared developer database) must never be used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Cell, MakeCellProject, url_of

CONFTEST = """
import os
# what real suites do: fall back to a shared database when the variable is missing
URL = os.environ.get("DATABASE_URL", "sqlite:///shared-dev.db")
STRICT = os.environ["DATABASE_URL"]  # and some read it strictly, in every process (the xdist controller too)
with open("url_seen_at_import.txt", "w") as seen:
    seen.write(URL)
"""

TESTS = """
import os, conftest

def test_uses_the_workers_database():
    assert "shared-dev" not in conftest.URL
    assert conftest.URL == os.environ["DATABASE_URL"]
"""

INVOCATIONS = {
    "n-auto-pdb": ("-n", "auto", "--pdb"),
    "n-0": ("-n", "0"),
    "n-2": ("-n", "2"),
    "no-xdist": ("-p", "no:xdist"),
    "collect-only-n-2": ("--collect-only", "-n", "2"),
}


# Which process runs the tests is decided before any backend is opened, the same way for
# every backend: sqlite:// goes through every invocation; a server, through xdist's two
# decisions that differ (it runs, -n 2; it is switched off after the fact, -n auto --pdb).
# The rest, repeats of those paths on a server, run with the slow tests (./run tests --all).
SERVER_INVOCATIONS = ("n-2", "n-auto-pdb")
RUNS = [
    pytest.param(
        backend,
        strategy,
        invocation,
        marks=() if backend == "sqlite-memory" or invocation in SERVER_INVOCATIONS else pytest.mark.slow,
        id=f"{backend}-{strategy}-{invocation}",
    )
    for backend in ("sqlite-memory", "postgresql", "mariadb")
    for strategy in ("reset", "rollback", "worker")
    for invocation in sorted(INVOCATIONS)
]


@pytest.mark.parametrize(("backend", "strategy", "invocation"), RUNS)
def test_a_run_in_this_process_gets_the_workers_database(
    backend: str,
    strategy: str,
    invocation: str,
    make_project: MakeCellProject,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    real_url = url_of(backend, request, tmp_path)
    pytester = make_project(Cell(backend, strategy, real_url), files={"conftest.py": CONFTEST, "test_app.py": TESTS})
    result = pytester.runpytest_subprocess(*INVOCATIONS[invocation], "-p", "no:randomly")
    seen = (pytester.path / "url_seen_at_import.txt").read_text()
    assert "shared-dev" not in seen and "dbscope_" in seen  # the worker's database, not the suite's fallback
    if invocation.startswith("collect-only"):
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["*<Function test_uses_the_workers_database>*"])
        return
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*dbscope isolation report*", "scopes created: 1, destroyed: 1"])
