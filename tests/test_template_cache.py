"""sqlite:// templates are built once and kept: later runs and other xdist workers load them.

A template's image is kept in the project's ``.dbscope/cache`` under its migrations'
fingerprint. These runs count how often the migrations really run (the migration writes
a line to a file each time) to show when the template was built and when it was loaded.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MIGRATION = """
import pathlib

def run(conn):
    with pathlib.Path(__file__).with_name("builds.log").open("a") as log:
        log.write("built\\n")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO items (name) VALUES ('seeded')")
"""

TESTS = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_starts_from_the_template(db, n):
    assert db.execute("SELECT name FROM items").rows[0]["name"] == "seeded"
    db.execute("INSERT INTO items (name) VALUES (?)", [f"test {n}"])
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(schema=MIGRATION, test_items=TESTS)
    pytester.makefile(".ini", pytest="[pytest]\npythonpath = .\ndbscope_migrations = schema:run\n")
    return pytester


def builds(pytester: pytest.Pytester) -> int:
    log = pytester.path / "builds.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
    assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines + result.errlines)
    result.assert_outcomes(passed=4)
    return result


def test_a_later_run_loads_the_template_instead_of_migrating(project: pytest.Pytester) -> None:
    run(project)
    assert builds(project) == 1
    images = list((project.path / ".dbscope" / "cache").glob("dbscope_tpl_*.image"))
    assert len(images) == 1
    assert (project.path / ".dbscope" / ".gitignore").read_text().splitlines()[-1] == "*"  # never committed

    run(project)
    assert builds(project) == 1  # loaded, not migrated

    run(project, "--dbscope-rebuild")
    assert builds(project) == 2  # --dbscope-rebuild still builds


def test_xdist_workers_starting_together_build_it_once(project: pytest.Pytester) -> None:
    result = run(project, "-n", "2", "-v")
    assert {"[gw0]", "[gw1]"} <= {word for line in result.outlines for word in line.split()}
    assert builds(project) == 1


def test_changed_migrations_get_a_template_of_their_own(project: pytest.Pytester) -> None:
    run(project)
    project.makepyfile(schema=MIGRATION.replace("name TEXT", "name TEXT NOT NULL"))
    run(project)
    assert builds(project) == 2
    assert len(list((project.path / ".dbscope" / "cache").glob("dbscope_tpl_*.image"))) == 2


@pytest.mark.parametrize("damage", ["cut short", "one byte changed", "not an image"])
def test_a_damaged_image_is_built_again_never_used(project: pytest.Pytester, damage: str) -> None:
    run(project)
    [image] = (project.path / ".dbscope" / "cache").glob("dbscope_tpl_*.image")
    data = image.read_bytes()
    if damage == "cut short":
        image.write_bytes(data[: len(data) // 2])
    elif damage == "one byte changed":
        image.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
    else:
        image.write_bytes(b"SQLite format 3\x00" + data[16:])

    run(project)
    assert builds(project) == 2  # noticed, and built again
    assert image.read_bytes() == data  # the same migrations, the same image, intact again
    run(project)
    assert builds(project) == 2  # the image built again is used from then on


def test_a_cache_that_cannot_be_written_stops_the_run_with_where_and_what_to_do(project: pytest.Pytester) -> None:
    (project.path / ".dbscope").mkdir()
    (project.path / ".dbscope" / "cache").write_text("a file where the cache directory goes")
    result = project.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = "\n".join(result.outlines + result.errlines)
    assert f"cannot use the template cache {project.path / '.dbscope' / 'cache'}" in output, output
    assert "make it writable, or remove it" in output
    assert builds(project) == 0


def test_the_cache_image_is_the_template_a_fresh_build_makes(project: pytest.Pytester) -> None:
    """A loaded template and a migrated one give the tests the same database."""
    project.makepyfile(
        test_schema=textwrap.dedent(
            """
            def test_schema(db):
                rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").rows
                with open("schema.txt", "a") as out:
                    out.write(repr([tuple(r) for r in rows]) + "\\n")
            """
        )
    )
    for _ in range(2):
        result = project.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=5)
    built, loaded = Path(project.path / "schema.txt").read_text().splitlines()
    assert builds(project) == 1 and built == loaded


def _dbscope(pytester: pytest.Pytester, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dbscope", *args], cwd=pytester.path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_doctor_compares_the_cached_image_with_a_fresh_build_and_gc_drops_it_on_request(
    project: pytest.Pytester,
) -> None:
    assert "  n/a      cached template: none was cached for these migrations; one is now" in _dbscope(project, "doctor")
    assert "  ok       cached template: identical to a fresh build" in _dbscope(project, "doctor")

    [image] = (project.path / ".dbscope" / "cache").glob("dbscope_tpl_*.image")
    listed = _dbscope(project, "gc", "--url", "sqlite://")
    assert f"keep {image.name}: cached template (give --templates to drop it)" in listed
    dropped = _dbscope(project, "gc", "--url", "sqlite://", "--templates", "--yes")
    assert f"dropped {image.name}: cached template" in dropped and not image.exists()
