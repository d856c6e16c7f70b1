"""A clone the pool made ahead, in its thread, is as isolated as one made on demand.

Each test waits until the pool holds its clones made ahead, so the next test gets one of
them; every test finds only the seed's row, through ``db`` (the connection the pool's
thread opened) and through a connection of the app opened by the database's URL, then
commits rows through both. Serially and under ``-n 2``; the report's pool hits show the
clones came from the pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Cell, MakeCellProject, url_of

TESTS = 12

POOLED_TESTS = f"""
import pytest
from app import raw_connect

@pytest.mark.parametrize("n", range({TESTS}))
def test_a_pooled_clone_holds_the_template_only(db, dbscope, n):
    assert dbscope.wait_for_pools(60)  # the next test's clone comes from the pool
    assert [tuple(r) for r in db.execute("SELECT name FROM items ORDER BY id").rows] == [("seeded",)]
    conn = raw_connect()
    try:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        conn.execute("INSERT INTO items (name) VALUES ('app ' || ?)", (str(n),))
        conn.commit()
    finally:
        conn.close()
    db.execute("INSERT INTO items (name) VALUES (:name)", {{"name": f"db {{n}}"}})
    assert db.execute("SELECT count(*) FROM items").scalar() == 3
"""

MODES = {"serial": (), "xdist": ("-n", "2")}


@pytest.fixture(params=["sqlite-memory", "sqlite-file"])
def sqlite_cell(request: pytest.FixtureRequest, tmp_path: Path) -> Cell:
    return Cell(str(request.param), "clone", url_of(str(request.param), request, tmp_path))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_pooled_clone_never_holds_an_earlier_tests_rows(
    sqlite_cell: Cell, mode: str, make_project: MakeCellProject
) -> None:
    pytester = make_project(sqlite_cell, files={"test_pooled.py": POOLED_TESTS})
    result = pytester.runpytest_subprocess(*MODES[mode], "-p", "no:randomly", "--dbscope-report=report.json")
    result.assert_outcomes(passed=TESTS)
    metrics = json.loads((pytester.path / "report.json").read_text())["metrics"]
    workers = 2 if mode == "xdist" else 1
    assert metrics["pool_hits"] >= TESTS - workers, metrics  # each worker's first clone may be made on demand
