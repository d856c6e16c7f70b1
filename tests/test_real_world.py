"""A real-world suite layout that breaks under -n 2 on its own and passes with dbscope settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPLICA = Path(__file__).parent / "replica"


@pytest.fixture
def replica(pytester: pytest.Pytester) -> pytest.Pytester:
    for item in ("app", "tests", "plain.ini", "dbscope.ini"):
        source = REPLICA / item
        if source.is_dir():
            shutil.copytree(source, pytester.path / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, pytester.path / item)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:benchmark", "-p", "no:cacheprovider", "--rootdir", str(pytester.path), *args
    )


def test_the_suite_passes_serially_on_its_shared_file(replica: pytest.Pytester) -> None:
    run(replica, "-c", "plain.ini", "-p", "no:dbscope").assert_outcomes(passed=30)


def test_the_suite_breaks_under_xdist_on_its_shared_file(replica: pytest.Pytester) -> None:
    result = run(replica, "-c", "plain.ini", "-p", "no:dbscope", "-n", "2")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) > 0
    result.stdout.re_match_lines(
        [r".*(UNIQUE constraint failed|database is locked|already exists|assert \d+ == 1|no such table).*"]
    )


def test_dbscope_settings_alone_make_it_pass_under_xdist(replica: pytest.Pytester) -> None:
    result = run(replica, "-c", "dbscope.ini", "-n", "2")
    result.assert_outcomes(passed=30)
    result.stdout.fnmatch_lines(["scopes created: 30, destroyed: 30"])
    assert not (replica.path / "test.db").exists()  # the shared file was never used
