"""--dbscope-keep-failed and ``dbscope gc --kept``: what is printed opens in psql / sqlite3 as printed.

Real pytest runs (pytester) of a test that fails after writing a row; the value printed
under "databases of failed tests, kept" is handed as it is to ``sqlite3`` or ``psql``
(both at /usr/bin), which must show the row. Then ``dbscope gc`` lists the kept database,
``--kept`` would drop it and ``--kept --yes`` drops it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pgsupport import drop_if_kept

from dbscope.cli import main

if TYPE_CHECKING:
    from conftest import MakeProject

FAILING_TEST = """
def test_fails_after_writing(db):
    db.execute("INSERT INTO users (name, email) VALUES ('kept ana', 'ana@example.com')")
    assert False, "fails on purpose"


def test_passes(db):
    db.execute("INSERT INTO users (name, email) VALUES ('dropped bob', 'bob@example.com')")
"""
PG_USERS = "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def kept_values(lines: list[str]) -> dict[str, str]:
    """nodeid -> the value printed for it under 'databases of failed tests, kept'."""
    start = next(i for i, line in enumerate(lines) if "dbscope: databases of failed tests, kept" in line)
    kept = {}
    for line in lines[start + 1 :]:
        if line.startswith("="):  # the next section
            break
        nodeid, _, value = line.partition(": ")
        kept[nodeid] = value
    return kept


def matching(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.fullmatch(pattern, line)]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    capsys.readouterr()  # what pytester's runs printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == "", err
    return code, out.splitlines()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///dbs"])
def test_a_kept_sqlite_database_opens_in_sqlite3_as_printed_and_gc_kept_drops_it(
    project: MakeProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    sqlite3_cli = tool("sqlite3")
    pytester = project(ini=f"dbscope_url = {url}\n")
    pytester.makepyfile(test_failing=FAILING_TEST)
    result = pytester.runpytest("--dbscope-keep-failed", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    printed = kept_values(result.outlines)["test_failing.py::test_fails_after_writing"]

    assert Path(printed).is_absolute() and Path(printed).parent == pytester.path / ".dbscope" / "failed"
    shown = subprocess.run(
        [sqlite3_cli, printed, "SELECT name FROM users"], capture_output=True, text=True, check=True
    ).stdout
    assert shown == "kept ana\n"

    monkeypatch.chdir(pytester.path)
    name = f".dbscope/failed/{Path(printed).name}"
    code, lines = run_cli(capsys, "gc", "--url", url)
    assert code == 0
    assert matching(
        lines, rf"keep {re.escape(name)}: a failed test's database, kept \d+ s ago \(give --kept to drop it\)"
    )
    assert lines[-1] == "nothing to drop"
    code, lines = run_cli(capsys, "gc", "--url", url, "--kept")
    assert matching(lines, rf"would drop {re.escape(name)}: a failed test's database, kept \d+ s ago")
    assert lines[-1] == "1 item(s) would be dropped; nothing was dropped: run again with --yes to drop them"
    assert Path(printed).exists()
    code, lines = run_cli(capsys, "gc", "--url", url, "--kept", "--yes")
    assert (code, lines[-1]) == (0, "dropped 1 item(s)")
    assert matching(lines, rf"dropped {re.escape(name)}: a failed test's database, kept \d+ s ago")
    assert not Path(printed).exists()
    code, lines = run_cli(capsys, "gc", "--url", "sqlite://")
    assert code == 0 and not any(name in line for line in lines), lines  # the kept copy is gone


def test_a_kept_postgresql_database_opens_in_psql_as_printed_and_gc_kept_drops_it(
    project: MakeProject, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    psql = tool("psql")
    pytester = project(ini=f"dbscope_url = {pg_url}\n", migrations={"0001_users.sql": f"-- {uuid.uuid4()}\n{PG_USERS}"})
    pytester.makepyfile(test_failing=FAILING_TEST)
    result = pytester.runpytest_subprocess("--dbscope-keep-failed", "-p", "no:benchmark", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    printed = kept_values(result.outlines)["test_failing.py::test_fails_after_writing"]
    name = printed.rsplit("/", 1)[1]
    try:
        assert printed.startswith("postgresql://postgres@127.0.0.1:5432/dbscope_")
        shown = subprocess.run(
            [psql, printed, "-X", "-A", "-t", "-c", "SELECT name FROM users"], capture_output=True, text=True
        )
        assert (shown.returncode, shown.stdout, shown.stderr) == (0, "kept ana\n", "")

        monkeypatch.chdir(pytester.path)
        _, lines = run_cli(capsys, "gc", "--url", pg_url)  # a dry run: nothing is dropped
        [line] = [line for line in lines if f" {name}: " in line]
        assert line.startswith(f"keep {name}: kept for a failed test by run ")
        assert line.endswith("(--dbscope-keep-failed); drop it with kept=True (dbscope gc --kept) when done")
        _, lines = run_cli(capsys, "gc", "--url", pg_url, "--kept")
        [line] = [line for line in lines if f" {name}: " in line]
        assert line.startswith(f"would drop {name}: kept for a failed test by run ")
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() == (1,)
    finally:
        drop_if_kept(pg_url, name)


def test_gc_kept_yes_drops_the_kept_databases_of_a_server_and_nothing_else(
    project: MakeProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pg_bindir: Path
) -> None:
    import psycopg

    from dbscope.backends.pg_cluster import start_cluster

    # a server of its own, whose kept databases outlive the runs in it (dbscope.throwaway off): --yes
    # drops every kept database, and on a shared server those would be someone else's too
    with start_cluster("postgresql+proc://?dbscope.throwaway=off") as cluster:
        pytester = project(ini=f"dbscope_url = {cluster.url}\n", migrations={"0001_users.sql": PG_USERS})
        pytester.makepyfile(test_failing=FAILING_TEST)
        result = pytester.runpytest_subprocess("--dbscope-keep-failed", "-p", "no:benchmark", "-p", "no:randomly")
        result.assert_outcomes(passed=1, failed=1)
        name = kept_values(result.outlines)["test_failing.py::test_fails_after_writing"].rsplit("/", 1)[1]

        monkeypatch.chdir(pytester.path)
        code, lines = run_cli(capsys, "gc", "--url", cluster.url, "--kept", "--yes")
        assert code == 0
        assert lines[-1] == "dropped 1 item(s)"
        assert any(line.startswith(f"dropped {name}: kept for a failed test by run ") for line in lines)
        assert sorted(line.split(":")[0].split("_tpl_")[0] for line in lines[:-1]) == [
            f"dropped {name}",
            "keep dbscope",  # the template, kept without --templates
            "keep dbscope_registry",
        ]
        with psycopg.connect(cluster.url) as conn:
            left = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbscope%'")]
        assert name not in left and "dbscope_registry" in left
        assert any(n.startswith("dbscope_tpl_") for n in left)  # templates stay without --templates
